//! [`Trace`] for the standard library's types.
//!
//! How each container's blocks are found:
//!
//! * `Box`, `Vec`, `String`, `VecDeque`: the buffer pointer is public
//!   (`as_ptr`, or a slice's pointer for `VecDeque`, an interior pointer the
//!   walker resolves to its block). Length and capacity give payload and
//!   slack.
//! * `Rc`, `Arc`: `as_ptr` points into the reference-counted block, which
//!   is reported as shared and traced once per walk.
//! * `HashMap`, `HashSet`: the table (one block: entries, then control
//!   bytes) is not exposed. Its pointer is among the words of the map
//!   itself, so the walker looks there, and picks the block closest in size
//!   to the table hashbrown would allocate for the map's capacity. If none
//!   is found, the estimate is reported as unlocated bytes (and the real
//!   block, unreached, shows up as unattributed).
//! * `BTreeMap`, `BTreeSet`: nodes are not addressable. The root node is
//!   found like a hash table (its pointer is a word of the map); the
//!   elements are traced precisely from it and the node is then scanned
//!   conservatively, which finds the inner nodes. Payload is the elements'
//!   size; node slack is not estimated.

use std::any::type_name;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::marker::PhantomData;
use std::mem::{size_of, size_of_val};
use std::rc::Rc;
use std::sync::Arc;

use super::{Trace, Tracer};

macro_rules! trace_nothing {
    ($($t:ty),* $(,)?) => {
        $(
            /// Owns no heap memory.
            impl Trace for $t {
                #[inline]
                fn trace(&self, _: &mut Tracer<'_>) {}
            }
        )*
    };
}

trace_nothing!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    str,
    std::time::Duration,
    std::time::Instant,
    std::time::SystemTime,
    std::num::NonZeroU64,
    std::num::NonZeroUsize,
    std::sync::atomic::AtomicBool,
    std::sync::atomic::AtomicU32,
    std::sync::atomic::AtomicU64,
    std::sync::atomic::AtomicUsize,
);

/// A borrow owns nothing: what it points to is its owner's.
impl<T: ?Sized> Trace for &T {
    fn trace(&self, _: &mut Tracer<'_>) {}
}

/// Owns nothing.
impl<T: ?Sized> Trace for PhantomData<T> {
    fn trace(&self, _: &mut Tracer<'_>) {}
}

impl<T: Trace> Trace for [T] {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        for item in self {
            item.trace(tracer);
        }
    }
}

impl<T: Trace, const N: usize> Trace for [T; N] {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        self.as_slice().trace(tracer);
    }
}

impl<T: Trace + ?Sized> Trace for Box<T> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        let value: &T = self;
        let size = size_of_val(value);
        if size == 0 {
            // A zero-sized box allocates nothing.
            return value.trace(tracer);
        }
        let ptr = value as *const T as *const u8;
        tracer.owned(ptr, size, size, type_name::<Box<T>>(), |t| value.trace(t));
    }
}

impl<T: Trace> Trace for Vec<T> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        let capacity = self.capacity() * size_of::<T>();
        if capacity == 0 {
            return self.as_slice().trace(tracer);
        }
        let used = self.len() * size_of::<T>();
        tracer.owned(
            self.as_ptr() as *const u8,
            capacity,
            used,
            type_name::<Vec<T>>(),
            |t| self.as_slice().trace(t),
        );
    }
}

impl Trace for String {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        if self.capacity() == 0 {
            return;
        }
        tracer.owned(
            self.as_ptr(),
            self.capacity(),
            self.len(),
            "alloc::string::String",
            |_| {},
        );
    }
}

impl<T: Trace> Trace for VecDeque<T> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        let capacity = self.capacity() * size_of::<T>();
        let (front, back) = self.as_slices();
        if capacity == 0 || front.is_empty() {
            // An empty deque's slices need not point into its buffer; its
            // buffer, if any, is then not found (and counted unattributed).
            return;
        }
        tracer.owned(
            front.as_ptr() as *const u8,
            capacity,
            self.len() * size_of::<T>(),
            type_name::<VecDeque<T>>(),
            |t| {
                front.trace(t);
                back.trace(t);
            },
        );
    }
}

impl<T: Trace + ?Sized> Trace for Rc<T> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        let value: &T = self;
        tracer.shared(Rc::as_ptr(self) as *const u8, type_name::<Rc<T>>(), |t| {
            value.trace(t)
        });
    }
}

impl<T: Trace + ?Sized> Trace for Arc<T> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        let value: &T = self;
        tracer.shared(Arc::as_ptr(self) as *const u8, type_name::<Arc<T>>(), |t| {
            value.trace(t)
        });
    }
}

impl<B> Trace for Cow<'_, B>
where
    B: ToOwned + ?Sized,
    B::Owned: Trace,
{
    fn trace(&self, tracer: &mut Tracer<'_>) {
        if let Cow::Owned(owned) = self {
            owned.trace(tracer);
        }
    }
}

impl<T: Trace> Trace for Option<T> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        if let Some(value) = self {
            value.trace(tracer);
        }
    }
}

impl<T: Trace, E: Trace> Trace for Result<T, E> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        match self {
            Ok(value) => value.trace(tracer),
            Err(error) => error.trace(tracer),
        }
    }
}

macro_rules! trace_tuple {
    ($($name:ident)+) => {
        impl<$($name: Trace),+> Trace for ($($name,)+) {
            #[allow(non_snake_case)]
            fn trace(&self, tracer: &mut Tracer<'_>) {
                let ($($name,)+) = self;
                $($name.trace(tracer);)+
            }
        }
    };
}

trace_tuple!(A);
trace_tuple!(A B);
trace_tuple!(A B C);
trace_tuple!(A B C D);
trace_tuple!(A B C D E);
trace_tuple!(A B C D E F);
trace_tuple!(A B C D E F G);
trace_tuple!(A B C D E F G H);

impl<K: Trace, V: Trace, S> Trace for HashMap<K, V, S> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        let entry = size_of::<(K, V)>();
        let estimated = hash_table_bytes(self.capacity(), entry);
        if estimated == 0 {
            return;
        }
        tracer.owned_in(
            self,
            estimated,
            self.len() * entry,
            type_name::<HashMap<K, V, S>>(),
            false,
            |t| {
                for (key, value) in self {
                    key.trace(t);
                    value.trace(t);
                }
            },
        );
    }
}

impl<T: Trace, S> Trace for HashSet<T, S> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        let entry = size_of::<T>();
        let estimated = hash_table_bytes(self.capacity(), entry);
        if estimated == 0 {
            return;
        }
        tracer.owned_in(
            self,
            estimated,
            self.len() * entry,
            type_name::<HashSet<T, S>>(),
            false,
            |t| {
                for item in self {
                    item.trace(t);
                }
            },
        );
    }
}

impl<K: Trace, V: Trace> Trace for BTreeMap<K, V> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        if self.is_empty() {
            return;
        }
        let entry = size_of::<K>() + size_of::<V>();
        tracer.owned_in(
            self,
            btree_leaf_bytes(entry),
            self.len() * entry,
            type_name::<BTreeMap<K, V>>(),
            true,
            |t| {
                for (key, value) in self {
                    key.trace(t);
                    value.trace(t);
                }
            },
        );
    }
}

impl<T: Trace> Trace for BTreeSet<T> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        if self.is_empty() {
            return;
        }
        let entry = size_of::<T>();
        tracer.owned_in(
            self,
            btree_leaf_bytes(entry),
            self.len() * entry,
            type_name::<BTreeSet<T>>(),
            true,
            |t| {
                for item in self {
                    item.trace(t);
                }
            },
        );
    }
}

/// `std::sync::Mutex`: traced only when it can be locked without waiting
/// (the walker must never block on the program's locks); a locked or
/// poisoned mutex's value is not traced, so what it owns may show up as
/// unattributed.
impl<T: Trace + ?Sized> Trace for std::sync::Mutex<T> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        if let Ok(value) = self.try_lock() {
            value.trace(tracer);
        }
    }
}

/// Like `std::sync::Mutex`: traced when it can be read without waiting.
impl<T: Trace + ?Sized> Trace for std::sync::RwLock<T> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        if let Ok(value) = self.try_read() {
            value.trace(tracer);
        }
    }
}

/// The bytes hashbrown (std's `HashMap`) allocates for a table that can
/// hold `capacity` entries of `entry` bytes: a power-of-two number of
/// buckets (7/8 of them usable from 8 buckets up), the entries rounded up
/// to the control bytes' alignment, then one control byte per bucket plus
/// one group. Only used to pick the right block among candidates.
fn hash_table_bytes(capacity: usize, entry: usize) -> usize {
    const GROUP: usize = 16;
    if capacity == 0 {
        return 0;
    }
    let buckets = if capacity < 8 {
        (capacity + 1).next_power_of_two()
    } else {
        (capacity.saturating_mul(8) / 7).next_power_of_two()
    };
    let entries = buckets.saturating_mul(entry).next_multiple_of(GROUP);
    entries + buckets + GROUP
}

/// A B-tree leaf node's size estimate: 11 entries plus parent pointer and
/// counters. Only used to pick the root node among candidates.
fn btree_leaf_bytes(entry: usize) -> usize {
    11 * entry + 16
}
