//! Named roots: long-lived values (a cache, a pool, a compiler context)
//! the heap walker starts from besides tasks.

use std::any::type_name;
use std::borrow::Cow;
use std::mem::size_of_val;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use crate::trace::Trace;

/// Registers `value` as a root of every heap walk, under `name`: each walk
/// reports what it owns alone and what it shares with other roots.
///
/// The value is `&'static` — a `static`, a `LazyLock`, or a leaked `Box` —
/// so the walker, running on another thread at any time, can always read
/// it; it is `Sync` because of that thread. Anything it mutates at run time
/// sits behind a lock or atomics, which its `Trace` impl reads without
/// blocking (`Mutex`es are traced only when `try_lock` succeeds).
/// [`unroot`] stops walking it.
///
/// ```
/// use std::sync::{LazyLock, Mutex};
/// use turbowish_trace::Trace;
///
/// #[derive(Trace)]
/// struct Cache {
///     entries: Mutex<Vec<String>>,
/// }
///
/// static CACHE: LazyLock<Cache> = LazyLock::new(|| Cache { entries: Mutex::new(Vec::new()) });
///
/// let id = turbowish_trace::root("cache", &*CACHE);
/// assert!(turbowish_trace::walk::unroot(id));
/// ```
pub fn root<T: Trace + Sync>(name: impl Into<Cow<'static, str>>, value: &'static T) -> RootId {
    let _internal = turbowish_alloc::internal();
    let id = RootId(NEXT_ID.fetch_add(1, Ordering::Relaxed));
    let registered = Registered {
        id,
        name: name.into(),
        value,
        addr: value as *const T as usize,
        size: size_of_val(value),
        type_name: type_name::<T>(),
    };
    ROOTS
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .push(registered);
    id
}

/// Stops walking a root registered with [`root`]; `false` if it was not
/// registered (or already removed).
pub fn unroot(id: RootId) -> bool {
    let _internal = turbowish_alloc::internal();
    let mut roots = ROOTS.write().unwrap_or_else(|e| e.into_inner());
    let before = roots.len();
    roots.retain(|r| r.id != id);
    roots.len() != before
}

/// A registered root, for [`unroot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RootId(u64);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);
static ROOTS: RwLock<Vec<Registered>> = RwLock::new(Vec::new());

#[derive(Clone)]
pub(crate) struct Registered {
    id: RootId,
    pub(crate) name: Cow<'static, str>,
    pub(crate) value: &'static (dyn Trace + Sync),
    pub(crate) addr: usize,
    pub(crate) size: usize,
    pub(crate) type_name: &'static str,
}

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registered")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("type_name", &self.type_name)
            .finish_non_exhaustive()
    }
}

/// The registered roots now (copied, so registering never waits on a walk).
pub(crate) fn registered() -> Vec<Registered> {
    ROOTS.read().unwrap_or_else(|e| e.into_inner()).clone()
}
