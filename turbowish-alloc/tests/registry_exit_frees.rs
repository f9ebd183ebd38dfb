//! Heap-walk mode: blocks freed by a thread after its exit hook (from a
//! pthread key destructor that runs after TurboWish's own) give their
//! registry entries back one at a time. Such a one-entry chunk must be
//! terminated: if its link still pointed into the list the entry was last
//! on, the next thread to take it would hand out an entry twice, two live
//! blocks would share it, and the view would miss one of them (and a drain
//! of deferred frees could free the wrong block).

use turbowish_alloc::{heap_view, TurboWish};

#[global_allocator]
static A: TurboWish = TurboWish::system().heap_walk().sample_interval(0);

/// Destructor of the key created by the thread below. Created after the
/// thread's first allocation registered TurboWish's exit key, so it runs
/// after TurboWish's own destructor: these frees take the exiting path.
unsafe extern "C" fn free_boxes(value: *mut libc::c_void) {
    // SAFETY: the value was set from `Box::into_raw` of this type, once.
    drop(unsafe { Box::from_raw(value.cast::<Vec<Box<u64>>>()) });
}

#[test]
fn frees_after_the_exit_hook_keep_every_live_block_in_the_view() {
    std::thread::spawn(|| {
        let boxes: Vec<Box<u64>> = (0..200).map(Box::new).collect();
        let mut key: libc::pthread_key_t = 0;
        // SAFETY: `key` is a valid out-pointer and `free_boxes` has the
        // destructor signature; the value is a leaked box it takes back.
        unsafe {
            assert_eq!(libc::pthread_key_create(&mut key, Some(free_boxes)), 0);
            assert_eq!(
                libc::pthread_setspecific(key, Box::into_raw(Box::new(boxes)).cast()),
                0
            );
        }
    })
    .join()
    .unwrap();

    // These take the entries the exited thread gave back.
    let mut mine: Vec<Box<u64>> = (0..2000).map(Box::new).collect();
    let view = heap_view().expect("heap-walk mode");
    let missing = mine
        .iter()
        .filter(|b| view.find(&***b as *const u64 as usize).is_none())
        .count();
    assert_eq!(missing, 0, "live blocks missing from the view");
    let second = mine.split_off(1000);
    drop(mine); // deferred while the view lives
    drop(view); // frees the deferred blocks
    let view = heap_view().expect("heap-walk mode");
    let listed = second
        .iter()
        .filter(|b| view.find(&***b as *const u64 as usize).is_some())
        .count();
    assert_eq!(listed, 1000);
    drop(view);
    assert!(second
        .iter()
        .enumerate()
        .all(|(i, b)| **b == (i + 1000) as u64));
}
