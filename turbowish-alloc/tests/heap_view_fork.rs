//! Heap-walk mode and `fork()`: the child has only the forking thread, so
//! state other threads of the parent were in the middle of must not make a
//! view in the child wait forever: a registered free in progress (its
//! counter stays raised in the child), or a view another thread held
//! (frees stay paused in the child, and no second view is allowed).
//!
//! The inner allocator parks in `dealloc` on request, so that a thread is
//! inside a registered free for sure when the process forks.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use turbowish_alloc::{heap_view, TurboWish};

/// `System`, whose `dealloc` of a block of [`PARK_SIZE`] user bytes sets
/// `PARKED` and waits until `UNPARK` is set.
struct Parking;

/// User size of the block whose free parks (its inner size adds the
/// 8-byte header).
const PARK_SIZE: usize = 4321;
static PARKED: AtomicBool = AtomicBool::new(false);
static UNPARK: AtomicBool = AtomicBool::new(false);

// SAFETY: forwards to `System`, only delaying one `dealloc`.
unsafe impl GlobalAlloc for Parking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for this function.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.size() == PARK_SIZE + 8 {
            PARKED.store(true, Ordering::SeqCst);
            while !UNPARK.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(1));
            }
        }
        // SAFETY: as for this function.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static A: TurboWish<Parking> = TurboWish::new(Parking).heap_walk().sample_interval(0);

/// Forks; the child takes a view, frees a block, drops the view and exits
/// 0, or is killed by `SIGALRM` after 2 s if it hangs. Returns the child's
/// wait status.
fn view_in_child() -> libc::c_int {
    // SAFETY: the child only allocates (the inner allocator survives a fork
    // of a threaded parent, glibc resets its locks), takes a view and exits
    // without running the parent's destructors.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: plain system calls in the child.
        unsafe { libc::alarm(2) };
        let block = std::hint::black_box(Box::new([7u8; 100]));
        let code = match heap_view() {
            Some(view) => {
                let found = view.find(block.as_ptr() as usize).is_some();
                drop(block); // deferred until the view is dropped
                drop(view);
                if found {
                    0
                } else {
                    4
                }
            }
            None => 3,
        };
        // SAFETY: ends the child at once.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` a valid out-pointer.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    status
}

fn assert_exited_0(status: libc::c_int, what: &str) {
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{what}: child status {status:#x} (signal {} if killed; 14 = SIGALRM: hung)",
        if libc::WIFSIGNALED(status) {
            libc::WTERMSIG(status)
        } else {
            0
        }
    );
}

#[test]
fn a_view_in_a_forked_child_does_not_wait_for_the_parents_threads() {
    // A thread parked inside a registered free while the process forks.
    // (`black_box`: an unused box's allocation may be optimised away.)
    let parked = thread::spawn(|| drop(std::hint::black_box(Box::new([0u8; PARK_SIZE]))));
    let started = Instant::now();
    while !PARKED.load(Ordering::SeqCst) {
        assert!(started.elapsed() < Duration::from_secs(10), "never parked");
        thread::sleep(Duration::from_millis(1));
    }
    assert_exited_0(view_in_child(), "fork during a free");
    UNPARK.store(true, Ordering::SeqCst);
    parked.join().unwrap();

    // A view held by another thread while the process forks.
    let (held_tx, held_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let holder = thread::spawn(move || {
        let view = heap_view().expect("heap-walk mode");
        held_tx.send(()).unwrap();
        done_rx.recv().unwrap();
        drop(view);
    });
    held_rx.recv().unwrap();
    assert_exited_0(view_in_child(), "fork while another thread holds a view");
    done_tx.send(()).unwrap();
    holder.join().unwrap();

    // The parent is unaffected.
    assert!(heap_view().is_some());
}
