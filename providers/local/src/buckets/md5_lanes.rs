//! MD5 of many uploads at once, in the lanes of one SIMD register.
//!
//! S3's ETag of a single-part object (and of each part) is the MD5 of its bytes, so every PUT
//! pays for MD5 over its whole body. MD5 is a chain: each 64-byte block needs the state the
//! previous block left, so one stream cannot go faster than one core's scalar MD5 (~2.5 ms per
//! MiB here; `examples/digest_cost.rs`). Independent streams can: with AVX2, eight uploads'
//! states sit in the eight 32-bit lanes of four registers and one instruction sequence
//! advances all of them, block by block (MinIO's `md5-simd` does the same for the same reason).
//! Where the CPU has AVX-512 (VL), the same eight lanes use its three-input logic and rotate
//! instructions: ~25% less time for eight uploads at once (`digest_cost`).
//!
//! How an upload uses it ([`Md5Stream`]): big chunks of its body are handed, as whole 64-byte
//! blocks, to one thread ("md5-lanes") that keeps up to eight uploads in its lanes and answers
//! each with the state its blocks led to. The upload keeps receiving (and checking its
//! SHA-256 and CRC) meanwhile and waits for that answer only before handing on its next
//! chunk, so even one upload alone gets its MD5 computed beside its other work. When only one
//! upload is in the lanes, the thread uses the scalar code (a lone lane is slower than
//! scalar). Small bodies and CPUs without AVX2 hash on the caller's thread as before. The
//! result is the same MD5 either way (tested against the `md-5` crate).

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, OnceLock};

use bytes::Bytes;
use md5::block_api::compress as scalar_compress;
use tokio::sync::oneshot;

/// Bytes gathered before they go to the lanes: a hand-off costs a wake-up or two, so it must
/// carry enough work (64 KiB is ~150 µs of MD5).
const BATCH: usize = 64 << 10;

/// A stream waits for the lanes once it has handed them this much that they have not hashed
/// yet: enough that the lanes thread always has the stream's next blocks queued, little
/// enough that a fast sender cannot pile its body up in memory behind a slower MD5.
const AHEAD: usize = 4 * BATCH;

/// At most this many blocks advance in one lock-step round, so that a new upload joins the
/// lanes soon.
const ROUND_BLOCKS: usize = 64;

const LANES: usize = 8;

/// Lock-step rounds run so far (more than one upload in the lanes).
static SIMD_ROUNDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

const IV: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

/// The MD5 of one stream, fed in chunks (see the module docs).
pub struct Md5Stream {
    /// The state, unless the lanes hold it (`in_lanes`).
    state: [u32; 4],
    len: u64,
    /// Bytes not yet making a whole block.
    carry: Vec<u8>,
    /// Whole blocks gathered for the next hand-off.
    segs: Vec<Bytes>,
    seg_len: usize,
    /// This stream's jobs, in order (the lanes thread keeps the state from one to the next).
    id: u64,
    in_lanes: bool,
    ahead: VecDeque<(oneshot::Receiver<[u32; 4]>, usize)>,
    ahead_bytes: usize,
}

impl Default for Md5Stream {
    fn default() -> Self {
        Md5Stream::new()
    }
}

impl Md5Stream {
    pub fn new() -> Md5Stream {
        static IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Md5Stream {
            state: IV,
            len: 0,
            carry: Vec::with_capacity(64),
            segs: Vec::new(),
            seg_len: 0,
            id: IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            in_lanes: false,
            ahead: VecDeque::new(),
            ahead_bytes: 0,
        }
    }

    /// Adds `chunk` (cheap: `Bytes` are shared, not copied, except a block split between
    /// chunks).
    pub async fn update(&mut self, chunk: &Bytes) {
        self.len += chunk.len() as u64;
        let mut c = chunk.clone();
        if !self.carry.is_empty() {
            let need = 64 - self.carry.len();
            if c.len() < need {
                self.carry.extend_from_slice(&c);
                return;
            }
            self.carry.extend_from_slice(&c[..need]);
            let block = Bytes::from(std::mem::replace(&mut self.carry, Vec::with_capacity(64)));
            self.push(block);
            c = c.slice(need..);
        }
        let whole = c.len() / 64 * 64;
        if whole > 0 {
            self.push(c.slice(..whole));
        }
        self.carry.extend_from_slice(&c[whole..]);
        if self.seg_len >= BATCH {
            self.hand_off(false).await;
        }
    }

    fn push(&mut self, seg: Bytes) {
        self.seg_len += seg.len();
        self.segs.push(seg);
    }

    /// Hands the gathered blocks to the lanes (or hashes them here: a small body, or no
    /// lanes); `last` ends the stream's jobs there.
    async fn hand_off(&mut self, last: bool) {
        let segs = std::mem::take(&mut self.segs);
        let n = std::mem::take(&mut self.seg_len);
        let lanes = lanes().filter(|_| self.in_lanes || n >= BATCH);
        let Some(l) = lanes else {
            for s in &segs {
                scalar_compress(&mut self.state, as_blocks(s));
            }
            return;
        };
        let (tx, rx) = oneshot::channel();
        let state = (!self.in_lanes).then_some(self.state);
        l.submit(Job { stream: self.id, state, segs, seg: 0, pos: 0, last, reply: tx });
        self.in_lanes = !last;
        self.ahead.push_back((rx, n));
        self.ahead_bytes += n;
        while self.ahead_bytes > AHEAD || (last && !self.ahead.is_empty()) {
            let (rx, n) = self.ahead.pop_front().expect("a job ahead");
            self.ahead_bytes -= n;
            // The lanes thread answers every job it takes; only a bug there (a panic) drops one.
            self.state = rx.await.expect("the md5-lanes thread answers every job");
        }
    }

    /// The digest.
    pub async fn finish(mut self) -> [u8; 16] {
        if self.in_lanes || !self.segs.is_empty() {
            self.hand_off(true).await;
        }
        let mut last = std::mem::take(&mut self.carry);
        last.push(0x80);
        while last.len() % 64 != 56 {
            last.push(0);
        }
        last.extend_from_slice(&(self.len.wrapping_mul(8)).to_le_bytes());
        scalar_compress(&mut self.state, as_blocks(&last));
        let mut out = [0u8; 16];
        for (o, w) in out.chunks_exact_mut(4).zip(self.state) {
            o.copy_from_slice(&w.to_le_bytes());
        }
        out
    }
}

impl Drop for Md5Stream {
    /// A stream dropped unfinished (a failed upload) tells the lanes to forget its state.
    fn drop(&mut self) {
        if self.in_lanes
            && let Some(l) = lanes()
        {
            let (tx, _) = oneshot::channel();
            l.submit(Job {
                stream: self.id,
                state: None,
                segs: Vec::new(),
                seg: 0,
                pos: 0,
                last: true,
                reply: tx,
            });
        }
    }
}

fn as_blocks(b: &[u8]) -> &[[u8; 64]] {
    let (blocks, rest) = b.as_chunks::<64>();
    debug_assert!(rest.is_empty(), "whole blocks only");
    blocks
}

struct Job {
    stream: u64,
    /// The state to start from; `None`: where the stream's previous job left it.
    state: Option<[u32; 4]>,
    /// Whole blocks, in order.
    segs: Vec<Bytes>,
    seg: usize,
    pos: usize,
    /// The stream's last job: its state is not kept.
    last: bool,
    reply: oneshot::Sender<[u32; 4]>,
}

impl Job {
    fn state(&self) -> [u32; 4] {
        self.state.expect("a job in a lane has its state")
    }

    /// The contiguous blocks left in the current segment (at most `max`).
    fn run(&self, max: usize) -> &[[u8; 64]] {
        let s = &self.segs[self.seg];
        let blocks = as_blocks(&s[self.pos..]);
        &blocks[..blocks.len().min(max)]
    }

    /// Moves past `n` blocks; whether the job is done.
    fn advance(&mut self, n: usize) -> bool {
        self.pos += n * 64;
        self.skip_empty()
    }

    fn skip_empty(&mut self) -> bool {
        while self.seg < self.segs.len() && self.pos == self.segs[self.seg].len() {
            self.seg += 1;
            self.pos = 0;
        }
        self.seg == self.segs.len()
    }
}

struct Lanes {
    queue: Mutex<VecDeque<Job>>,
    wake: Condvar,
}

impl Lanes {
    fn submit(&self, job: Job) {
        self.queue.lock().unwrap().push_back(job);
        self.wake.notify_one();
    }
}

/// The lanes thread, started on first use; `None` without AVX2 (or off x86-64).
fn lanes() -> Option<&'static Lanes> {
    static LANES_: OnceLock<Option<&'static Lanes>> = OnceLock::new();
    *LANES_.get_or_init(|| {
        if !simd::available() {
            return None;
        }
        let l: &'static Lanes =
            Box::leak(Box::new(Lanes { queue: Mutex::new(VecDeque::new()), wake: Condvar::new() }));
        std::thread::Builder::new().name("md5-lanes".into()).spawn(move || run(l)).ok().map(|_| l)
    })
}

/// What the lanes thread keeps between rounds.
#[derive(Default)]
struct Board {
    lanes: [Option<Job>; LANES],
    /// Where each stream's last finished (not last) job left its state.
    states: std::collections::HashMap<u64, [u32; 4]>,
}

impl Board {
    fn idle(&self) -> bool {
        self.lanes.iter().all(Option::is_none)
    }

    /// Moves jobs from `queue` into free lanes: a stream's jobs one at a time, in order.
    fn fill(&mut self, queue: &mut VecDeque<Job>) {
        let mut i = 0;
        let mut held = Vec::new();
        while i < queue.len() && self.lanes.iter().any(Option::is_none) {
            let stream = queue[i].stream;
            if held.contains(&stream) || self.lanes.iter().flatten().any(|j| j.stream == stream) {
                held.push(stream);
                i += 1;
                continue;
            }
            let mut job = queue.remove(i).expect("index in range");
            if job.state.is_none() {
                let kept = self.states.remove(&stream);
                // Only a dropped stream's "forget" job (no blocks) can come without one.
                debug_assert!(kept.is_some() || job.segs.is_empty());
                job.state = Some(kept.unwrap_or(IV));
            }
            if job.skip_empty() {
                self.done(job);
                continue;
            }
            let free = self.lanes.iter_mut().find(|x| x.is_none()).expect("a free lane");
            *free = Some(job);
        }
    }

    /// Answers a finished job, keeping its state for the stream's next one.
    fn done(&mut self, job: Job) {
        let state = job.state();
        if !job.last {
            self.states.insert(job.stream, state);
        }
        let _ = job.reply.send(state);
    }
}

fn run(l: &Lanes) {
    let mut board = Board::default();
    loop {
        {
            let mut q = l.queue.lock().unwrap();
            loop {
                board.fill(&mut q);
                if !board.idle() {
                    break;
                }
                q = l.wake.wait(q).unwrap();
            }
        }
        for job in step(&mut board.lanes) {
            board.done(job);
        }
    }
}

/// Advances the jobs in `lanes` by one round; the jobs that are done, taken out.
fn step(lanes: &mut [Option<Job>; LANES]) -> Vec<Job> {
    let active = lanes.iter().filter(|j| j.is_some()).count();
    let mut done = [false; LANES];
    if active == 1 {
        let (i, job) = lanes.iter_mut().enumerate().find_map(|(i, j)| j.as_mut().map(|j| (i, j))).unwrap();
        let mut state = job.state();
        let run = job.run(ROUND_BLOCKS);
        let n = run.len();
        scalar_compress(&mut state, run);
        job.state = Some(state);
        done[i] = job.advance(n);
    } else {
        let n = lanes.iter().flatten().map(|j| j.run(ROUND_BLOCKS).len()).min().unwrap_or(0);
        // An idle lane hashes a busy lane's blocks into a state nobody reads.
        let any = lanes.iter().flatten().next().map(|j| j.run(n).as_ptr()).unwrap();
        let mut ptrs = [any; LANES];
        let mut states = [[0u32; 4]; LANES];
        for (i, j) in lanes.iter().enumerate() {
            if let Some(j) = j {
                ptrs[i] = j.run(n).as_ptr();
                states[i] = j.state();
            }
        }
        simd::compress8(&mut states, &ptrs, n);
        SIMD_ROUNDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        for (i, j) in lanes.iter_mut().enumerate() {
            if let Some(j) = j {
                j.state = Some(states[i]);
                done[i] = j.advance(n);
            }
        }
    }
    let mut finished = Vec::new();
    for (i, d) in done.into_iter().enumerate() {
        if d && let Some(j) = lanes[i].take() {
            finished.push(j);
        }
    }
    finished
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::*;

    use super::LANES;

    pub fn available() -> bool {
        std::is_x86_feature_detected!("avx2")
    }

    /// The instruction sets the lanes can use here, best first.
    #[derive(Clone, Copy, Debug, PartialEq)]
    pub enum Kernel {
        Avx512Vl,
        Avx2,
    }

    /// Whether this CPU runs kernel `k`.
    pub fn supported(k: Kernel) -> bool {
        match k {
            Kernel::Avx512Vl => {
                available()
                    && std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512vl")
            }
            Kernel::Avx2 => available(),
        }
    }

    /// The kernels this CPU runs, best first.
    pub fn kernels() -> Vec<Kernel> {
        [Kernel::Avx512Vl, Kernel::Avx2].into_iter().filter(|&k| supported(k)).collect()
    }

    /// Advances eight MD5 states by `n` blocks each: lane `i` reads `n * 64` bytes at
    /// `ptrs[i]`. Uses the best kernel, chosen once.
    pub fn compress8(states: &mut [[u32; 4]; LANES], ptrs: &[*const [u8; 64]; LANES], n: usize) {
        static BEST: std::sync::OnceLock<Option<Kernel>> = std::sync::OnceLock::new();
        let k = BEST.get_or_init(|| kernels().first().copied()).expect("the lanes run only with AVX2");
        // SAFETY: `k` is one this CPU runs (chosen from `kernels()`); the pointers are the
        // caller's, valid for `n` blocks.
        unsafe { run_kernel(k, states, ptrs, n) }
    }

    /// [`compress8`] with the kernel `k` (the tests run every one the CPU has).
    #[cfg(test)]
    pub fn compress8_on(
        k: Kernel,
        states: &mut [[u32; 4]; LANES],
        ptrs: &[*const [u8; 64]; LANES],
        n: usize,
    ) {
        assert!(supported(k), "{k:?} is not available on this CPU");
        // SAFETY: checked just above; the pointers are the caller's, valid for `n` blocks.
        unsafe { run_kernel(k, states, ptrs, n) }
    }

    /// # Safety
    /// The CPU runs `k`, and every pointer is valid for `n` blocks.
    unsafe fn run_kernel(
        k: Kernel,
        states: &mut [[u32; 4]; LANES],
        ptrs: &[*const [u8; 64]; LANES],
        n: usize,
    ) {
        // SAFETY: the caller's contract.
        match k {
            Kernel::Avx512Vl => unsafe { compress8_avx512vl(states, ptrs, n) },
            Kernel::Avx2 => unsafe { compress8_avx2(states, ptrs, n) },
        }
    }

    const K: [u32; 64] = [
        0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
        0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
        0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
        0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
        0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
        0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
        0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
        0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
    ];

    /// Transposes eight rows of eight words (lane-major) into eight words of eight lanes.
    #[target_feature(enable = "avx2")]
    fn transpose(r: [__m256i; 8]) -> [__m256i; 8] {
        let t0 = _mm256_unpacklo_epi32(r[0], r[1]);
        let t1 = _mm256_unpackhi_epi32(r[0], r[1]);
        let t2 = _mm256_unpacklo_epi32(r[2], r[3]);
        let t3 = _mm256_unpackhi_epi32(r[2], r[3]);
        let t4 = _mm256_unpacklo_epi32(r[4], r[5]);
        let t5 = _mm256_unpackhi_epi32(r[4], r[5]);
        let t6 = _mm256_unpacklo_epi32(r[6], r[7]);
        let t7 = _mm256_unpackhi_epi32(r[6], r[7]);
        let u0 = _mm256_unpacklo_epi64(t0, t2);
        let u1 = _mm256_unpackhi_epi64(t0, t2);
        let u2 = _mm256_unpacklo_epi64(t1, t3);
        let u3 = _mm256_unpackhi_epi64(t1, t3);
        let u4 = _mm256_unpacklo_epi64(t4, t6);
        let u5 = _mm256_unpackhi_epi64(t4, t6);
        let u6 = _mm256_unpacklo_epi64(t5, t7);
        let u7 = _mm256_unpackhi_epi64(t5, t7);
        [
            _mm256_permute2x128_si256::<0x20>(u0, u4),
            _mm256_permute2x128_si256::<0x20>(u1, u5),
            _mm256_permute2x128_si256::<0x20>(u2, u6),
            _mm256_permute2x128_si256::<0x20>(u3, u7),
            _mm256_permute2x128_si256::<0x31>(u0, u4),
            _mm256_permute2x128_si256::<0x31>(u1, u5),
            _mm256_permute2x128_si256::<0x31>(u2, u6),
            _mm256_permute2x128_si256::<0x31>(u3, u7),
        ]
    }

    // The four MD5 functions and the rotation, for each instruction set. AVX-512 (VL: on the
    // same 256-bit registers) does each function in one `vpternlogd` and the rotation in one
    // `vprold`, where AVX2 needs three instructions for each: ~40% fewer per step.
    macro_rules! avx2_ff {
        ($b:expr, $c:expr, $d:expr) => {
            _mm256_xor_si256($d, _mm256_and_si256($b, _mm256_xor_si256($c, $d)))
        };
    }
    macro_rules! avx2_gg {
        ($b:expr, $c:expr, $d:expr) => {
            _mm256_xor_si256($c, _mm256_and_si256($d, _mm256_xor_si256($b, $c)))
        };
    }
    macro_rules! avx2_hh {
        ($b:expr, $c:expr, $d:expr) => {
            _mm256_xor_si256($b, _mm256_xor_si256($c, $d))
        };
    }
    macro_rules! avx2_ii {
        ($b:expr, $c:expr, $d:expr) => {
            _mm256_xor_si256($c, _mm256_or_si256($b, _mm256_xor_si256($d, _mm256_set1_epi32(-1))))
        };
    }
    macro_rules! avx2_rol {
        ($t:expr, $s:literal) => {
            _mm256_or_si256(_mm256_slli_epi32::<$s>($t), _mm256_srli_epi32::<{ 32 - $s }>($t))
        };
    }
    // `vpternlogd`'s table: the function of (0xf0, 0xcc, 0xaa) standing for (b, c, d).
    macro_rules! vl_ff {
        ($b:expr, $c:expr, $d:expr) => {
            _mm256_ternarylogic_epi32::<0xca>($b, $c, $d)
        };
    }
    macro_rules! vl_gg {
        ($b:expr, $c:expr, $d:expr) => {
            _mm256_ternarylogic_epi32::<0xe4>($b, $c, $d)
        };
    }
    macro_rules! vl_hh {
        ($b:expr, $c:expr, $d:expr) => {
            _mm256_ternarylogic_epi32::<0x96>($b, $c, $d)
        };
    }
    macro_rules! vl_ii {
        ($b:expr, $c:expr, $d:expr) => {
            _mm256_ternarylogic_epi32::<0x39>($b, $c, $d)
        };
    }
    macro_rules! vl_rol {
        ($t:expr, $s:literal) => {
            _mm256_rol_epi32::<$s>($t)
        };
    }

    /// One MD5 step in all eight lanes: `a = b + rol(a + f(b, c, d) + K[k] + m[g], s)`.
    macro_rules! step {
        ($f:ident, $rol:ident, $m:ident, $a:ident, $b:ident, $c:ident, $d:ident, $k:expr, $g:expr, $s:literal) => {{
            let f = $f!($b, $c, $d);
            let t = _mm256_add_epi32(
                _mm256_add_epi32($a, f),
                _mm256_add_epi32(_mm256_set1_epi32(K[$k] as i32), $m[$g]),
            );
            $a = _mm256_add_epi32($b, $rol!(t, $s));
        }};
    }
    macro_rules! four {
        ($f:ident, $rol:ident, $m:ident, $a:ident, $b:ident, $c:ident, $d:ident, $k:expr,
         $g0:expr, $g1:expr, $g2:expr, $g3:expr, $s0:literal, $s1:literal, $s2:literal, $s3:literal) => {{
            step!($f, $rol, $m, $a, $b, $c, $d, $k, $g0, $s0);
            step!($f, $rol, $m, $d, $a, $b, $c, $k + 1, $g1, $s1);
            step!($f, $rol, $m, $c, $d, $a, $b, $k + 2, $g2, $s2);
            step!($f, $rol, $m, $b, $c, $d, $a, $k + 3, $g3, $s3);
        }};
    }

    /// The kernel, for one instruction set's functions and rotation.
    macro_rules! kernel {
        ($name:ident, $features:literal, $ff:ident, $gg:ident, $hh:ident, $ii:ident, $rol:ident) => {
            #[target_feature(enable = $features)]
            unsafe fn $name(states: &mut [[u32; 4]; LANES], ptrs: &[*const [u8; 64]; LANES], n: usize) {
                let mut cols = [[0u32; LANES]; 4];
                for (i, s) in states.iter().enumerate() {
                    for w in 0..4 {
                        cols[w][i] = s[w];
                    }
                }
                // SAFETY: unaligned loads of eight u32s.
                let [mut a, mut b, mut c, mut d] =
                    cols.map(|c| unsafe { _mm256_loadu_si256(c.as_ptr().cast()) });
                for blk in 0..n {
                    let mut lo = [_mm256_setzero_si256(); 8];
                    let mut hi = [_mm256_setzero_si256(); 8];
                    for i in 0..LANES {
                        // SAFETY: lane i's pointer is valid for n blocks (compress8's contract).
                        let p = unsafe { ptrs[i].add(blk) }.cast::<__m256i>();
                        lo[i] = unsafe { _mm256_loadu_si256(p) };
                        hi[i] = unsafe { _mm256_loadu_si256(p.add(1)) };
                    }
                    let lo = transpose(lo);
                    let hi = transpose(hi);
                    let m = [
                        lo[0], lo[1], lo[2], lo[3], lo[4], lo[5], lo[6], lo[7], hi[0], hi[1], hi[2], hi[3],
                        hi[4], hi[5], hi[6], hi[7],
                    ];
                    let (aa, bb, cc, dd) = (a, b, c, d);
                    four!($ff, $rol, m, a, b, c, d, 0, 0, 1, 2, 3, 7, 12, 17, 22);
                    four!($ff, $rol, m, a, b, c, d, 4, 4, 5, 6, 7, 7, 12, 17, 22);
                    four!($ff, $rol, m, a, b, c, d, 8, 8, 9, 10, 11, 7, 12, 17, 22);
                    four!($ff, $rol, m, a, b, c, d, 12, 12, 13, 14, 15, 7, 12, 17, 22);
                    four!($gg, $rol, m, a, b, c, d, 16, 1, 6, 11, 0, 5, 9, 14, 20);
                    four!($gg, $rol, m, a, b, c, d, 20, 5, 10, 15, 4, 5, 9, 14, 20);
                    four!($gg, $rol, m, a, b, c, d, 24, 9, 14, 3, 8, 5, 9, 14, 20);
                    four!($gg, $rol, m, a, b, c, d, 28, 13, 2, 7, 12, 5, 9, 14, 20);
                    four!($hh, $rol, m, a, b, c, d, 32, 5, 8, 11, 14, 4, 11, 16, 23);
                    four!($hh, $rol, m, a, b, c, d, 36, 1, 4, 7, 10, 4, 11, 16, 23);
                    four!($hh, $rol, m, a, b, c, d, 40, 13, 0, 3, 6, 4, 11, 16, 23);
                    four!($hh, $rol, m, a, b, c, d, 44, 9, 12, 15, 2, 4, 11, 16, 23);
                    four!($ii, $rol, m, a, b, c, d, 48, 0, 7, 14, 5, 6, 10, 15, 21);
                    four!($ii, $rol, m, a, b, c, d, 52, 12, 3, 10, 1, 6, 10, 15, 21);
                    four!($ii, $rol, m, a, b, c, d, 56, 8, 15, 6, 13, 6, 10, 15, 21);
                    four!($ii, $rol, m, a, b, c, d, 60, 4, 11, 2, 9, 6, 10, 15, 21);
                    a = _mm256_add_epi32(a, aa);
                    b = _mm256_add_epi32(b, bb);
                    c = _mm256_add_epi32(c, cc);
                    d = _mm256_add_epi32(d, dd);
                }
                let mut out = [[0u32; LANES]; 4];
                for (o, v) in out.iter_mut().zip([a, b, c, d]) {
                    // SAFETY: an unaligned store of eight u32s.
                    unsafe { _mm256_storeu_si256(o.as_mut_ptr().cast(), v) };
                }
                for (i, s) in states.iter_mut().enumerate() {
                    *s = [out[0][i], out[1][i], out[2][i], out[3][i]];
                }
            }
        };
    }

    kernel!(compress8_avx2, "avx2", avx2_ff, avx2_gg, avx2_hh, avx2_ii, avx2_rol);
    kernel!(compress8_avx512vl, "avx2,avx512f,avx512vl", vl_ff, vl_gg, vl_hh, vl_ii, vl_rol);
}

#[cfg(not(target_arch = "x86_64"))]
mod simd {
    use super::LANES;

    pub fn available() -> bool {
        false
    }

    pub fn compress8(_: &mut [[u32; 4]; LANES], _: &[*const [u8; 64]; LANES], _: usize) {
        unreachable!("lanes() is None without SIMD")
    }

    /// No SIMD kernel off x86-64.
    #[cfg(test)]
    #[derive(Clone, Copy, Debug)]
    pub enum Kernel {}

    #[cfg(test)]
    pub fn kernels() -> Vec<Kernel> {
        Vec::new()
    }

    #[cfg(test)]
    pub fn compress8_on(k: Kernel, _: &mut [[u32; 4]; LANES], _: &[*const [u8; 64]; LANES], _: usize) {
        match k {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5::{Digest, Md5};

    fn data(len: usize, seed: u32) -> Vec<u8> {
        let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
    }

    #[test]
    fn the_eight_lanes_compute_each_lanes_md5() {
        if !simd::available() {
            // Without AVX2 the lanes are never started and every stream hashes on its own
            // thread (the next tests check the digests either way).
            assert!(lanes().is_none());
            return;
        }
        // Eight different streams of 5 blocks, advanced together, then compared per lane.
        let bufs: Vec<Vec<u8>> = (0..LANES as u32).map(|i| data(5 * 64, i)).collect();
        let ptrs: [*const [u8; 64]; LANES] = std::array::from_fn(|i| as_blocks(&bufs[i]).as_ptr());
        // Every instruction set this CPU has (AVX2 always, here; AVX-512 where present).
        for k in simd::kernels() {
            let mut states = [IV; LANES];
            simd::compress8_on(k, &mut states, &ptrs, 5);
            for (i, b) in bufs.iter().enumerate() {
                let mut want = IV;
                scalar_compress(&mut want, as_blocks(b));
                assert_eq!(states[i], want, "{k:?}, lane {i}");
            }
        }
    }

    #[test]
    fn streams_fed_in_odd_chunks_at_once_match_md5() {
        // Many streams at the same time, each fed in chunks whose sizes split blocks, so the
        // lanes hold several jobs at once, join and leave at different blocks.
        let rt = rt();
        let sizes = [
            0usize,
            1,
            63,
            64,
            65,
            1000,
            BATCH - 1,
            BATCH,
            BATCH + 7,
            3 * BATCH + 129,
            1 << 20,
            (1 << 20) + 3,
        ];
        let results = rt.block_on(async {
            let mut tasks = Vec::new();
            for (i, &len) in sizes.iter().enumerate() {
                tasks.push(tokio::spawn(async move {
                    let d = data(len, 100 + i as u32);
                    let mut s = Md5Stream::new();
                    let mut at = 0;
                    let mut step = 1 + (i * 7919) % 50_000;
                    while at < d.len() {
                        let end = (at + step).min(d.len());
                        s.update(&Bytes::copy_from_slice(&d[at..end])).await;
                        at = end;
                        step = step * 3 % 70_001 + 1;
                    }
                    let got = s.finish().await;
                    let want: [u8; 16] = Md5::digest(&d).into();
                    (len, got, want)
                }));
            }
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        });
        for (len, got, want) in results {
            assert_eq!(got, want, "stream of {len} bytes");
        }
    }

    #[test]
    fn jobs_joining_and_leaving_the_lanes_each_get_their_state() {
        // The lanes thread's loop, driven by hand. Twelve streams of two jobs each (the second continues from where the lanes left
        // the first), of different lengths and segment layouts, on eight lanes.
        let mut queue = VecDeque::new();
        let mut want = Vec::new();
        let mut replies = Vec::new();
        let mut jobs = Vec::new();
        for i in 0..12u32 {
            let blocks = [1usize, 2, 3, 64, 65, 130, 7, 200, 1, 33, 129, 5][i as usize];
            let d = data(blocks * 64 * 2, i);
            let mut w = IV;
            scalar_compress(&mut w, as_blocks(&d));
            want.push(w);
            for (half, part) in d.chunks(blocks * 64).enumerate() {
                // Segments of 1, 2, 3, ... blocks.
                let (mut segs, mut at, mut n) = (Vec::new(), 0, 1);
                while at < part.len() {
                    let end = (at + n * 64).min(part.len());
                    segs.push(Bytes::copy_from_slice(&part[at..end]));
                    at = end;
                    n += 1;
                }
                let (tx, rx) = oneshot::channel();
                let (state, last) = if half == 0 { (Some(IV), false) } else { (None, true) };
                jobs.push((
                    half,
                    Job { stream: 1_000_000 + i as u64, state, segs, seg: 0, pos: 0, last, reply: tx },
                ));
                if half == 1 {
                    replies.push(rx);
                }
            }
        }
        // A stream dropped after its first job: its "forget" job (see Drop) clears its state.
        let (tx, _) = oneshot::channel();
        let segs = vec![Bytes::from(data(64 * 3, 99))];
        jobs.push((
            0,
            Job { stream: 2_000_000, state: Some(IV), segs, seg: 0, pos: 0, last: false, reply: tx },
        ));
        let (tx, _) = oneshot::channel();
        jobs.push((
            1,
            Job { stream: 2_000_000, state: None, segs: Vec::new(), seg: 0, pos: 0, last: true, reply: tx },
        ));
        // All first halves, then all second halves: a second half waits for its first.
        jobs.sort_by_key(|(half, _)| *half);
        queue.extend(jobs.into_iter().map(|(_, j)| j));
        if !simd::available() {
            assert!(lanes().is_none(), "no lanes without AVX2");
            return;
        }
        let before = SIMD_ROUNDS.load(std::sync::atomic::Ordering::Relaxed);
        let mut board = Board::default();
        loop {
            board.fill(&mut queue);
            if board.idle() {
                break;
            }
            for job in step(&mut board.lanes) {
                board.done(job);
            }
        }
        assert!(queue.is_empty(), "every job ran");
        assert!(board.states.is_empty(), "no state is kept after a stream's last job");
        for (i, mut rx) in replies.into_iter().enumerate() {
            assert_eq!(rx.try_recv().expect("every job is answered"), want[i], "job {i}");
        }
        assert!(SIMD_ROUNDS.load(std::sync::atomic::Ordering::Relaxed) > before, "lock-step rounds ran");
    }

    #[test]
    fn an_empty_stream_is_the_md5_of_nothing() {
        let got = rt().block_on(Md5Stream::new().finish());
        assert_eq!(super::super::store::hex(&got), "d41d8cd98f00b204e9800998ecf8427e");
    }
}
