//! Heap-walk mode: frees pay only a compiler fence for their side of the
//! pause when the kernel offers private expedited `membarrier`, which the
//! view then runs for them. If that system call starts failing later (here
//! a seccomp filter makes it return `EPERM`, as a sandbox installed after
//! start-up would), a fence on the view's side alone does not pause frees
//! safely: `heap_view` must give up (`None`), leave frees running, and work
//! again where the call works.

use std::thread;

use turbowish_alloc::{heap_view, TurboWish};

#[global_allocator]
static A: TurboWish = TurboWish::system().heap_walk().sample_interval(0);

const MEMBARRIER_CMD_QUERY: libc::c_long = 0;
const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;

/// Whether the kernel offers private expedited membarriers (not, e.g.,
/// under valgrind): only then does the allocator rely on them.
fn kernel_has_expedited_membarrier() -> bool {
    // SAFETY: the query command takes no memory.
    let commands = unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_QUERY, 0) };
    commands > 0 && commands & MEMBARRIER_CMD_PRIVATE_EXPEDITED != 0
}

/// Makes `membarrier` fail with `EPERM` on the calling thread from now on
/// (and on threads it spawns), every other system call allowed.
fn forbid_membarrier() {
    let nr = libc::SYS_membarrier as u32;
    let filter = [
        // Load the system call number (offset 0 of `seccomp_data`).
        libc::sock_filter {
            code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
            jt: 0,
            jf: 0,
            k: 0,
        },
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: nr,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        },
    ];
    let program = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: `program` points to a valid filter that outlives the calls;
    // the filter applies to this thread only.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &program as *const libc::sock_fprog
            ),
            0,
            "seccomp filter refused"
        );
    }
    // SAFETY: as in `kernel_has_expedited_membarrier`.
    let now = unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_QUERY, 0) };
    assert_eq!(now, -1, "the filter forbids membarrier");
}

#[test]
fn no_view_when_membarrier_starts_failing() {
    let block = vec![3u8; 100];
    // The first view sets the registry up: asymmetric mode where offered.
    assert!(heap_view().unwrap().find(block.as_ptr() as usize).is_some());
    if !kernel_has_expedited_membarrier() {
        eprintln!("no private expedited membarrier here: the fallback fence is always used");
        return;
    }
    thread::spawn(|| {
        forbid_membarrier();
        let churn = thread::spawn(|| {
            for i in 0..20_000u64 {
                drop(std::hint::black_box(Box::new(i)));
            }
        });
        for _ in 0..100 {
            assert!(heap_view().is_none(), "a view without a working barrier");
        }
        churn.join().unwrap();
    })
    .join()
    .unwrap();
    // Frees were not left paused, and views work again where the call does.
    let view = heap_view().expect("a view");
    assert!(view.find(block.as_ptr() as usize).is_some());
    drop(view);
    drop(block);
}
