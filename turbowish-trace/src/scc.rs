//! Strongly connected components (Tarjan's algorithm, without recursion),
//! for the two graphs that need them: the heap walk's shared blocks and the
//! wait-for graph of [`crate::chains::cycles`].

/// The component of each of the `n` nodes, numbered so that an edge
/// between two components goes from a higher number to a lower one, and
/// how many there are. The search starts from each of `starts` in turn;
/// `edges(v)` lists `v`'s successors (only the nodes it yields are
/// entered). Nodes never reached get [`NONE`].
pub(crate) fn components<I: Iterator<Item = u32>>(
    n: usize,
    starts: impl IntoIterator<Item = u32>,
    mut edges: impl FnMut(u32) -> I,
) -> (Vec<u32>, u32) {
    let mut t = Tarjan {
        comp: vec![NONE; n],
        order: vec![UNSEEN; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        count: 0,
    };
    let mut calls = Vec::new();
    for start in starts {
        if t.order[start as usize] != UNSEEN {
            continue;
        }
        t.open(start);
        calls.push((start, edges(start)));
        while let Some((v, successors)) = calls.last_mut() {
            let v = *v;
            match successors.next() {
                Some(w) if t.order[w as usize] == UNSEEN => {
                    t.open(w);
                    calls.push((w, edges(w)));
                }
                Some(w) => {
                    if t.on_stack[w as usize] {
                        t.low[v as usize] = t.low[v as usize].min(t.order[w as usize]);
                    }
                }
                None => {
                    calls.pop();
                    if let Some(&(u, _)) = calls.last() {
                        t.low[u as usize] = t.low[u as usize].min(t.low[v as usize]);
                    }
                    t.close(v);
                }
            }
        }
    }
    (t.comp, t.count)
}

/// The component of a node [`components`] did not reach.
pub(crate) const NONE: u32 = u32::MAX;

/// `order` of a node [`components`] has not reached yet.
const UNSEEN: u32 = u32::MAX;

/// The state of [`components`]' depth-first search.
struct Tarjan {
    comp: Vec<u32>,
    order: Vec<u32>,
    low: Vec<u32>,
    on_stack: Vec<bool>,
    stack: Vec<u32>,
    next: u32,
    count: u32,
}

impl Tarjan {
    /// Numbers `v` on first reaching it.
    fn open(&mut self, v: u32) {
        self.order[v as usize] = self.next;
        self.low[v as usize] = self.next;
        self.next += 1;
        self.stack.push(v);
        self.on_stack[v as usize] = true;
    }

    /// Once `v`'s edges are all followed: if it is its component's first
    /// node, the nodes above it on the stack are that component.
    fn close(&mut self, v: u32) {
        if self.low[v as usize] != self.order[v as usize] {
            return;
        }
        while let Some(x) = self.stack.pop() {
            self.on_stack[x as usize] = false;
            self.comp[x as usize] = self.count;
            if x == v {
                break;
            }
        }
        self.count += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::components;

    #[test]
    fn cycles_are_one_component_each_and_edges_point_to_lower_numbers() {
        // 0 -> 1 -> 2 -> 0, 2 -> 3, 3 -> 3, 4 alone, 5 never started.
        let succ: Vec<Vec<u32>> = vec![vec![1], vec![2], vec![0, 3], vec![3], vec![], vec![]];
        let (comp, count) = components(6, 0..5, |v| succ[v as usize].clone().into_iter());
        assert_eq!(count, 3);
        assert_eq!(comp[0], comp[1]);
        assert_eq!(comp[1], comp[2]);
        assert_ne!(comp[2], comp[3]);
        assert!(comp[2] > comp[3], "an edge goes from higher to lower");
        assert_ne!(comp[4], comp[3]);
        assert_eq!(comp[5], super::NONE);
    }
}
