//! The six memory workloads of the start-up evaluation (docs: workloads.md),
//! stand-ins for the SPEC CPU2006 programs the Twinkle paper used, chosen for
//! their memory behaviour. Each builds its data (the "initialization"),
//! reports Ready (the snapshot point), runs `iters` rounds of work, and logs a
//! checksum and the run time, so a restored VM can be checked against a
//! resident one.
//!
//! Arguments: `kind=astar|libquantum|mcf|omnetpp|perlbench|xalancbmk`,
//! `mib=N` (data size, default 64), `iters=N` (rounds, default 4),
//! `ready_at=K` (report Ready after K rounds instead of before the first: a
//! snapshot in the middle of the work; the checksum covers all rounds).

#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use alloc::collections::{BinaryHeap, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;
use core::cmp::Reverse;
use core::fmt::Write;

twinkle_rt::entry!(main);

fn setting(name: &str, default: &'static str) -> &'static str {
    twinkle_rt::arg_value(name).unwrap_or(default)
}

/// xorshift64: deterministic data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mix(h: u64, v: u64) -> u64 {
    (h ^ v).wrapping_mul(0x100_0000_01b3).rotate_left(7)
}

trait Workload {
    /// One round of work; returns a value folded into the checksum.
    fn round(&mut self, i: u64) -> u64;
}

/// A* / BFS over a grid graph: moderate working set, some locality.
struct Astar {
    w: usize,
    h: usize,
    walls: Vec<u8>,
    dist: Vec<u32>,
    rng: Rng,
}

impl Astar {
    fn new(bytes: usize, rng: Rng) -> Self {
        let cells = bytes / 5;
        let mut w = 1usize;
        while w * w < cells {
            w += 1;
        }
        let h = cells / w.max(1);
        let mut rng = rng;
        let walls = (0..w * h).map(|_| u8::from(rng.below(100) < 25)).collect();
        Astar { w, h, walls, dist: alloc::vec![u32::MAX; w * h], rng }
    }
}

impl Workload for Astar {
    fn round(&mut self, _: u64) -> u64 {
        let (w, h) = (self.w, self.h);
        let start = self.rng.below(w * h);
        self.dist.iter_mut().for_each(|d| *d = u32::MAX);
        let mut q = VecDeque::new();
        self.dist[start] = 0;
        q.push_back(start);
        let mut visited = 0u64;
        let mut far = 0u64;
        // A bounded search: a region around the start, as path finding does.
        while let Some(c) = q.pop_front() {
            visited += 1;
            if visited > (w * h / 4) as u64 {
                break;
            }
            let d = self.dist[c];
            far = far.max(u64::from(d));
            let (x, y) = (c % w, c / w);
            let mut try_push = |n: usize, dist: &mut Vec<u32>| {
                if self.walls[n] == 0 && dist[n] == u32::MAX {
                    dist[n] = d + 1;
                    q.push_back(n);
                }
            };
            if x > 0 {
                try_push(c - 1, &mut self.dist);
            }
            if x + 1 < w {
                try_push(c + 1, &mut self.dist);
            }
            if y > 0 {
                try_push(c - w, &mut self.dist);
            }
            if y + 1 < h {
                try_push(c + w, &mut self.dist);
            }
        }
        mix(visited, far)
    }
}

/// Repeated sequential streaming over one large array.
struct Quantum {
    amp: Vec<u64>,
}

impl Workload for Quantum {
    fn round(&mut self, i: u64) -> u64 {
        let mut h = 0u64;
        let gate = 1u64 << (i % 61);
        for a in self.amp.iter_mut() {
            *a = (*a ^ gate).rotate_left(3);
            h = h.wrapping_add(*a);
        }
        h
    }
}

/// Pointer chasing over a random cycle through all of memory.
struct Mcf {
    next: Vec<u32>,
    pos: u32,
}

impl Mcf {
    fn new(bytes: usize, mut rng: Rng) -> Self {
        let n = (bytes / 4).max(2);
        let mut perm: Vec<u32> = (0..n as u32).collect();
        for i in (1..n).rev() {
            perm.swap(i, rng.below(i + 1));
        }
        let mut next = alloc::vec![0u32; n];
        for i in 0..n {
            next[perm[i] as usize] = perm[(i + 1) % n];
        }
        Mcf { next, pos: perm[0] }
    }
}

impl Workload for Mcf {
    fn round(&mut self, _: u64) -> u64 {
        let steps = self.next.len() / 2;
        let mut p = self.pos;
        let mut h = 0u64;
        for _ in 0..steps {
            p = self.next[p as usize];
            h = h.wrapping_add(u64::from(p));
        }
        self.pos = p;
        h
    }
}

/// A discrete-event simulation: a binary heap of events plus small objects.
struct Omnet {
    queue: BinaryHeap<Reverse<(u64, u32)>>,
    // Boxed on purpose: omnetpp's many small heap objects.
    #[allow(clippy::vec_box)]
    nodes: Vec<Box<[u64; 8]>>,
    now: u64,
    rng: Rng,
}

impl Workload for Omnet {
    fn round(&mut self, _: u64) -> u64 {
        let mut h = 0u64;
        for _ in 0..self.nodes.len() {
            let Some(Reverse((t, n))) = self.queue.pop() else { break };
            self.now = t;
            let node = &mut self.nodes[n as usize];
            node[(t % 8) as usize] = node[(t % 8) as usize].wrapping_add(t);
            h = mix(h, node[0] ^ t);
            let dst = self.rng.below(self.nodes.len()) as u32;
            self.queue.push(Reverse((t + 1 + self.rng.below(100) as u64, dst)));
        }
        h
    }
}

/// An interpreter's hash tables and string building: many small allocations.
struct Perl {
    table: Vec<Option<(String, u64)>>,
    rng: Rng,
    live: usize,
}

impl Perl {
    fn slot(&self, key: &str) -> usize {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in key.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        let mut i = (h as usize) % self.table.len();
        while let Some((k, _)) = &self.table[i] {
            if k == key {
                break;
            }
            i = (i + 1) % self.table.len();
        }
        i
    }
}

impl Workload for Perl {
    fn round(&mut self, i: u64) -> u64 {
        let mut h = 0u64;
        let ops = self.table.len() / 4;
        let cap = self.table.len() / 2;
        for _ in 0..ops {
            let mut key = String::new();
            let _ = write!(key, "var_{}_{}", self.rng.below(self.live * 2), i % 3);
            let s = self.slot(&key);
            match &mut self.table[s] {
                Some((_, v)) => {
                    *v = v.wrapping_add(1);
                    h = mix(h, *v);
                }
                slot @ None if self.live < cap => {
                    *slot = Some((key, i));
                    self.live += 1;
                }
                None => h = mix(h, s as u64),
            }
        }
        h
    }
}

/// A tree built once, then walked repeatedly with allocation churn.
struct Xalan {
    children: Vec<Vec<u32>>,
    text: Vec<u64>,
}

impl Workload for Xalan {
    fn round(&mut self, i: u64) -> u64 {
        let mut h = 0u64;
        let mut stack = alloc::vec![0u32];
        let mut out = String::new();
        while let Some(n) = stack.pop() {
            let n = n as usize;
            self.text[n] = self.text[n].rotate_left(1) ^ i;
            if n.is_multiple_of(64) {
                out.clear();
                let _ = write!(out, "<n{}>{}</n>", n, self.text[n]);
                h = mix(h, out.len() as u64);
            }
            h = h.wrapping_add(self.text[n]);
            stack.extend(self.children[n].iter().copied());
        }
        h
    }
}

fn build(kind: &str, bytes: usize) -> Option<Box<dyn Workload>> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    Some(match kind {
        "astar" => Box::new(Astar::new(bytes, rng)),
        "libquantum" => Box::new(Quantum { amp: (0..bytes / 8).map(|_| rng.next()).collect() }),
        "mcf" => Box::new(Mcf::new(bytes, rng)),
        "omnetpp" => {
            let n = (bytes / 96).max(1);
            let nodes = (0..n).map(|i| Box::new([i as u64; 8])).collect();
            let mut queue = BinaryHeap::new();
            for i in 0..n as u32 {
                queue.push(Reverse((rng.below(1000) as u64, i)));
            }
            Box::new(Omnet { queue, nodes, now: 0, rng })
        }
        "perlbench" => {
            let n = (bytes / 64).next_power_of_two().max(16);
            let mut p = Perl { table: (0..n).map(|_| None).collect(), rng, live: 0 };
            for i in 0..n / 4 {
                let mut key = String::new();
                let _ = write!(key, "var_{}_{}", i, i % 3);
                let s = p.slot(&key);
                p.table[s] = Some((key, i as u64));
                p.live += 1;
            }
            Box::new(p)
        }
        "xalancbmk" => {
            let n = (bytes / 48).max(2);
            let mut children: Vec<Vec<u32>> = (0..n).map(|_| Vec::new()).collect();
            for i in 1..n {
                let parent = rng.below(i);
                children[parent].push(i as u32);
            }
            Box::new(Xalan { children, text: (0..n).map(|_| rng.next()).collect() })
        }
        _ => return None,
    })
}

fn main() -> u8 {
    let kind = setting("kind", "mcf");
    let mib: usize = setting("mib", "64").parse().unwrap_or(64);
    let iters: u64 = setting("iters", "4").parse().unwrap_or(4);
    let t0 = twinkle_rt::clock::monotonic_ns();
    let Some(mut w) = build(kind, mib << 20) else {
        twinkle_rt::error!("workload: unknown kind {kind:?} (astar, libquantum, mcf, omnetpp, perlbench, xalancbmk)");
        return 2;
    };
    let init_us = (twinkle_rt::clock::monotonic_ns() - t0) / 1000;
    let ready_at: u64 = setting("ready_at", "0").parse().unwrap_or(0);
    twinkle_rt::info!("workload {kind}: {mib} MiB built in {init_us} us; {iters} rounds");
    let mut start = twinkle_rt::clock::monotonic_ns();
    let mut sum = 0u64;
    for i in 0..iters {
        if i == ready_at {
            twinkle_rt::hypercall::ready();
            start = twinkle_rt::clock::monotonic_ns();
        }
        sum = mix(sum, w.round(i));
    }
    if ready_at >= iters {
        twinkle_rt::hypercall::ready();
    }
    let elapsed = twinkle_rt::clock::monotonic_ns() - start;
    twinkle_rt::info!("workload {kind}: checksum={sum:016x} elapsed_us={}", elapsed / 1000);
    0
}
