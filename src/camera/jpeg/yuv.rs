//! A baseline JPEG encoder for the YCbCr formats cameras send (YUYV, UYVY, NV12), working
//! from their samples as they are: no RGB round trip, the chroma taken at 4:2:0 straight
//! from the frame, and one pass over it.
//!
//! Per 16 rows of the frame it gathers the luma and the averaged chroma into strips, then
//! per 8x8 block: a float AAN forward DCT (the scaling folded into the quantisation),
//! quantisation and Huffman coding with the standard tables (JPEG Annex K), the non-zero
//! coefficients found through a bit mask. The block code is written so the compiler turns
//! it into vector instructions; on x86-64 a copy built for AVX2 is used when the processor
//! has it.

// Everything the block loop calls is inlined on purpose: only code inlined into
// `encode_avx2` is compiled with AVX2.
#![allow(clippy::inline_always)]

use std::sync::OnceLock;

/// How a frame lays out its samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Packed 4:2:2, Y0 Cb Y1 Cr.
    Yuyv,
    /// Packed 4:2:2, Cb Y0 Cr Y1.
    Uyvy,
    /// A luma plane, then one plane of interleaved Cb, Cr at half size both ways.
    Nv12,
}

/// Encodes a `width` x `height` frame (`width` even, both at least 1 and at most 65535;
/// `data` at least one frame long) at `quality` (1 to 100, as libjpeg's scale).
pub fn encode(layout: Layout, data: &[u8], width: usize, height: usize, quality: u8) -> Vec<u8> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor has AVX2, the only requirement of `encode_avx2`.
        return unsafe { encode_avx2(layout, data, width, height, quality) };
    }
    encode_any::<false>(layout, data, width, height, quality)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn encode_avx2(layout: Layout, data: &[u8], width: usize, height: usize, quality: u8) -> Vec<u8> {
    encode_any::<true>(layout, data, width, height, quality)
}

/// The encoder, built for processors with AVX2 when `AVX2` is true.
#[inline(always)]
fn encode_any<const AVX2: bool>(
    layout: Layout,
    data: &[u8],
    width: usize,
    height: usize,
    quality: u8,
) -> Vec<u8> {
    let tables = Tables::new(quality);
    let mut out = Bits::new(data.len() / 8 + 1024);
    write_headers(&mut out.bytes, width, height, &tables);

    // Strips of one row of MCUs: 16 luma rows and 8 rows of each chroma, padded to whole
    // blocks by repeating the last column (and, at the bottom, the last row).
    let mcus = width.div_ceil(16);
    let (yw, cw) = (mcus * 16, mcus * 8);
    let mut luma = vec![0u8; yw * 16];
    let (mut cb, mut cr) = (vec![0u8; cw * 8], vec![0u8; cw * 8]);
    let mut dc = [0i32; 3];
    for top in (0..height).step_by(16) {
        fill_strips(
            layout, data, width, height, top, &mut luma, &mut cb, &mut cr,
        );
        for m in 0..mcus {
            for (by, bx) in [(0, 0), (0, 8), (8, 0), (8, 8)] {
                let block = fdct_quantize::<AVX2>(&luma[by * yw + m * 16 + bx..], yw, &tables.luma);
                out.block::<AVX2>(&block, &mut dc[0], &tables.huffman[0]);
            }
            let block = fdct_quantize::<AVX2>(&cb[m * 8..], cw, &tables.chroma);
            out.block::<AVX2>(&block, &mut dc[1], &tables.huffman[1]);
            let block = fdct_quantize::<AVX2>(&cr[m * 8..], cw, &tables.chroma);
            out.block::<AVX2>(&block, &mut dc[2], &tables.huffman[1]);
        }
    }
    out.finish()
}

/// Gathers rows `top..top + 16` of the frame into the strips.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn fill_strips(
    layout: Layout,
    data: &[u8],
    width: usize,
    height: usize,
    top: usize,
    luma: &mut [u8],
    cb: &mut [u8],
    cr: &mut [u8],
) {
    let (yw, cw) = (luma.len() / 16, cb.len() / 8);
    let half = width / 2;
    let row_of = |r: usize| (top + r).min(height - 1);
    match layout {
        Layout::Yuyv | Layout::Uyvy => {
            let (y0, c0) = if layout == Layout::Yuyv {
                (0, 1)
            } else {
                (1, 0)
            };
            let line = |r: usize| &data[row_of(r) * width * 2..][..width * 2];
            for r in 0..16 {
                let dst = &mut luma[r * yw..][..width];
                for (d, s) in dst.chunks_exact_mut(2).zip(line(r).chunks_exact(4)) {
                    d[0] = s[y0];
                    d[1] = s[y0 + 2];
                }
            }
            for r in 0..8 {
                let (a, b) = (line(2 * r), line(2 * r + 1));
                let (u, v) = (&mut cb[r * cw..][..half], &mut cr[r * cw..][..half]);
                for (((u, v), a), b) in u
                    .iter_mut()
                    .zip(v.iter_mut())
                    .zip(a.chunks_exact(4))
                    .zip(b.chunks_exact(4))
                {
                    *u = ((u16::from(a[c0]) + u16::from(b[c0]) + 1) >> 1) as u8;
                    *v = ((u16::from(a[c0 + 2]) + u16::from(b[c0 + 2]) + 1) >> 1) as u8;
                }
            }
        }
        Layout::Nv12 => {
            for r in 0..16 {
                luma[r * yw..][..width].copy_from_slice(&data[row_of(r) * width..][..width]);
            }
            let chroma = &data[width * height..];
            let chroma_rows = height.div_ceil(2);
            for r in 0..8 {
                let src = &chroma[((top / 2 + r).min(chroma_rows - 1)) * width..][..half * 2];
                let (u, v) = (&mut cb[r * cw..][..half], &mut cr[r * cw..][..half]);
                for ((u, v), s) in u.iter_mut().zip(v.iter_mut()).zip(src.chunks_exact(2)) {
                    *u = s[0];
                    *v = s[1];
                }
            }
        }
    }
    for r in 0..16 {
        let row = &mut luma[r * yw..][..yw];
        let last = row[width - 1];
        row[width..].fill(last);
    }
    for plane in [&mut *cb, &mut *cr] {
        for r in 0..8 {
            let row = &mut plane[r * cw..][..cw];
            let last = row[half - 1];
            row[half..].fill(last);
        }
    }
}

type Lanes = [i32; 8];

/// Fractional bits of the transform's multipliers.
const CONST_BITS: u32 = 12;
/// Bits the samples are scaled up by before the transform, kept through it for precision.
const SAMPLE_BITS: u32 = 3;
/// Fractional bits of the quantisation multipliers.
const QUANT_BITS: u32 = 15;

/// A transform multiplier in fixed point.
const fn fixed(k: f64) -> i32 {
    (k * (1 << CONST_BITS) as f64 + 0.5) as i32
}

#[inline(always)]
fn add(mut a: Lanes, b: Lanes) -> Lanes {
    for i in 0..8 {
        a[i] += b[i];
    }
    a
}

#[inline(always)]
fn sub(mut a: Lanes, b: Lanes) -> Lanes {
    for i in 0..8 {
        a[i] -= b[i];
    }
    a
}

/// `a` times the fixed-point multiplier `k`, rounded.
#[inline(always)]
fn mul(mut a: Lanes, k: i32) -> Lanes {
    for x in &mut a {
        *x = (*x * k + (1 << (CONST_BITS - 1))) >> CONST_BITS;
    }
    a
}

/// One pass of the AAN forward DCT (the algorithm of libjpeg's `jfdctfst.c`) in integers
/// over eight vectors: each lane is an independent 8-point transform. Outputs are scaled
/// as the quantisation multipliers expect.
///
/// Integers rather than floats: the result is as fast on hardware, and several times
/// faster where the processor is emulated (qemu translates integer vector instructions to
/// the host's, but computes float ones in software).
#[inline(always)]
fn aan(d: [Lanes; 8]) -> [Lanes; 8] {
    const K0_707: i32 = fixed(std::f64::consts::FRAC_1_SQRT_2);
    const K0_382: i32 = fixed(0.382_683_433);
    const K0_541: i32 = fixed(0.541_196_100);
    const K1_306: i32 = fixed(1.306_562_965);
    let (t0, t7) = (add(d[0], d[7]), sub(d[0], d[7]));
    let (t1, t6) = (add(d[1], d[6]), sub(d[1], d[6]));
    let (t2, t5) = (add(d[2], d[5]), sub(d[2], d[5]));
    let (t3, t4) = (add(d[3], d[4]), sub(d[3], d[4]));
    // Even part.
    let (t10, t13) = (add(t0, t3), sub(t0, t3));
    let (t11, t12) = (add(t1, t2), sub(t1, t2));
    let z1 = mul(add(t12, t13), K0_707);
    // Odd part.
    let t10o = add(t4, t5);
    let t11o = add(t5, t6);
    let t12o = add(t6, t7);
    let z5 = mul(sub(t10o, t12o), K0_382);
    let z2 = add(mul(t10o, K0_541), z5);
    let z4 = add(mul(t12o, K1_306), z5);
    let z3 = mul(t11o, K0_707);
    let (z11, z13) = (add(t7, z3), sub(t7, z3));
    [
        add(t10, t11),
        add(z11, z4),
        add(t13, z1),
        sub(z13, z2),
        sub(t10, t11),
        add(z13, z2),
        sub(t13, z1),
        sub(z11, z4),
    ]
}

/// The quantised DCT of the 8x8 block at the start of `samples` (rows `stride` apart),
/// transposed: coefficient (vertical v, horizontal u) at `u * 8 + v`. The multipliers and
/// the zigzag order of [`Tables`] are transposed to match.
///
/// Bounds, so no step overflows an `i32`: scaled samples are below 2^10 in size; a pass
/// multiplies by at most 8 (the DC sum) times the AAN scale (at most 1.39), so values stay
/// below 2^17 and their products with the transform's multipliers (below 2^13) below 2^30;
/// the quantising product is the JPEG coefficient (below 2^11) times 2^15 over the
/// quantiser, below 2^26.
#[inline(always)]
fn fdct_quantize<const AVX2: bool>(
    samples: &[u8],
    stride: usize,
    multipliers: &[i32; 64],
) -> [i32; 64] {
    // Vector r is row r, its lanes the columns: the first pass transforms every column at
    // once.
    let mut rows = [[0i32; 8]; 8];
    for (r, lanes) in rows.iter_mut().enumerate() {
        let row = &samples[r * stride..][..8];
        for c in 0..8 {
            lanes[c] = (i32::from(row[c]) - 128) << SAMPLE_BITS;
        }
    }
    // Transposed, vector c is column c, its lanes the vertical frequencies: the second
    // pass transforms every row of frequencies at once.
    let freq = aan(transpose::<AVX2>(aan(rows)));
    let mut out = [0i32; 64];
    for u in 0..8 {
        for v in 0..8 {
            let x = freq[u][v] * multipliers[u * 8 + v];
            out[u * 8 + v] = (x + (1 << (QUANT_BITS - 1))) >> QUANT_BITS;
        }
    }
    out
}

/// The 8x8 block with rows and columns swapped.
#[inline(always)]
fn transpose<const AVX2: bool>(m: [Lanes; 8]) -> [Lanes; 8] {
    #[cfg(target_arch = "x86_64")]
    if AVX2 {
        // SAFETY: only `encode_avx2` runs the encoder with `AVX2`, and only on a processor
        // with AVX2, which includes the AVX `transpose_avx` needs.
        return unsafe { transpose_avx(m) };
    }
    std::array::from_fn(|c| std::array::from_fn(|r| m[r][c]))
}

/// [`transpose`] in eight registers: pairs of rows interleaved, then pairs of pairs, then
/// the halves exchanged.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[inline]
fn transpose_avx(m: [Lanes; 8]) -> [Lanes; 8] {
    use std::arch::x86_64::*;
    // SAFETY: each `Lanes` is eight 32-bit lanes in a row, what the unaligned loads and
    // stores read and write. They move as floats, and shuffles leave their bits as they are.
    let r: [__m256; 8] =
        std::array::from_fn(|i| unsafe { _mm256_loadu_ps(m[i].as_ptr().cast::<f32>()) });
    let t0 = _mm256_unpacklo_ps(r[0], r[1]);
    let t1 = _mm256_unpackhi_ps(r[0], r[1]);
    let t2 = _mm256_unpacklo_ps(r[2], r[3]);
    let t3 = _mm256_unpackhi_ps(r[2], r[3]);
    let t4 = _mm256_unpacklo_ps(r[4], r[5]);
    let t5 = _mm256_unpackhi_ps(r[4], r[5]);
    let t6 = _mm256_unpacklo_ps(r[6], r[7]);
    let t7 = _mm256_unpackhi_ps(r[6], r[7]);
    let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
    let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
    let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
    let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
    let out = [
        _mm256_permute2f128_ps::<0x20>(u0, u4),
        _mm256_permute2f128_ps::<0x20>(u1, u5),
        _mm256_permute2f128_ps::<0x20>(u2, u6),
        _mm256_permute2f128_ps::<0x20>(u3, u7),
        _mm256_permute2f128_ps::<0x31>(u0, u4),
        _mm256_permute2f128_ps::<0x31>(u1, u5),
        _mm256_permute2f128_ps::<0x31>(u2, u6),
        _mm256_permute2f128_ps::<0x31>(u3, u7),
    ];
    let mut t = [[0i32; 8]; 8];
    for (lanes, v) in t.iter_mut().zip(out) {
        // SAFETY: as for the loads.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr().cast::<f32>(), v) };
    }
    t
}

/// The position in natural order of each coefficient in zigzag order.
const ZIGZAG: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// [`ZIGZAG`] for blocks stored transposed, as [`fdct_quantize`] leaves them.
const ZIGZAG_TRANSPOSED: [usize; 64] = {
    let mut t = [0; 64];
    let mut i = 0;
    while i < 64 {
        t[i] = ZIGZAG[i] % 8 * 8 + ZIGZAG[i] / 8;
        i += 1;
    }
    t
};

/// The luminance quantisation table of JPEG Annex K, natural order, at quality 50.
const LUMA_Q: [u16; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
    92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];

/// The chrominance quantisation table of JPEG Annex K, natural order, at quality 50.
const CHROMA_Q: [u16; 64] = [
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
];

/// A table scaled to `quality` as libjpeg scales it, kept to baseline's 1 to 255.
fn scaled(base: &[u16; 64], quality: u8) -> [u8; 64] {
    let q = u32::from(quality.clamp(1, 100));
    let scale = if q < 50 { 5000 / q } else { 200 - 2 * q };
    base.map(|b| ((u32::from(b) * scale + 50) / 100).clamp(1, 255) as u8)
}

/// What the AAN outputs are multiplied by, in fixed point: one over the quantiser and the
/// transform's own scale, transposed as [`fdct_quantize`] stores coefficients.
fn multipliers(table: &[u8; 64]) -> [i32; 64] {
    const AAN_SCALE: [f64; 8] = [
        1.0,
        1.387_039_845,
        1.306_562_965,
        1.175_875_602,
        1.0,
        0.785_694_958,
        0.541_196_100,
        0.275_899_379,
    ];
    std::array::from_fn(|t| {
        let (u, v) = (t / 8, t % 8);
        let scale = f64::from(table[v * 8 + u])
            * AAN_SCALE[v]
            * AAN_SCALE[u]
            * 8.0
            * f64::from(1 << SAMPLE_BITS);
        (f64::from(1 << QUANT_BITS) / scale).round() as i32
    })
}

/// A Huffman table as the encoder uses it: per symbol, its code and the code's length.
struct Huffman {
    code: [u16; 256],
    len: [u8; 256],
}

impl Huffman {
    /// From a DHT table's 16 counts of codes per length and its symbols.
    fn from_dht(counts: &[u8], symbols: &[u8]) -> Huffman {
        let mut table = Huffman {
            code: [0; 256],
            len: [0; 256],
        };
        let (mut code, mut k) = (0u16, 0);
        for (bits, &n) in counts.iter().enumerate() {
            for _ in 0..n {
                let symbol = usize::from(symbols[k]);
                table.code[symbol] = code;
                table.len[symbol] = bits as u8 + 1;
                code += 1;
                k += 1;
            }
            code <<= 1;
        }
        table
    }
}

/// The DC and AC tables of one kind of component.
struct HuffmanPair {
    dc: Huffman,
    ac: Huffman,
}

/// The standard Huffman tables: their DHT segments, and luminance and chrominance pairs.
struct StandardHuffman {
    segments: &'static [u8],
    pairs: [HuffmanPair; 2],
}

fn standard_huffman() -> &'static StandardHuffman {
    static TABLES: OnceLock<StandardHuffman> = OnceLock::new();
    TABLES.get_or_init(|| {
        let segments = super::standard_huffman_segments();
        let mut found: [[Option<Huffman>; 2]; 2] = Default::default();
        let mut i = 0;
        while i + 4 <= segments.len() {
            let len = usize::from(u16::from_be_bytes([segments[i + 2], segments[i + 3]]));
            let mut t = i + 4;
            while t < i + 2 + len {
                let (class, id) = (usize::from(segments[t] >> 4), usize::from(segments[t] & 15));
                let counts = &segments[t + 1..t + 17];
                let n: usize = counts.iter().map(|&c| usize::from(c)).sum();
                let symbols = &segments[t + 17..t + 17 + n];
                found[id][class] = Some(Huffman::from_dht(counts, symbols));
                t += 17 + n;
            }
            i += 2 + len;
        }
        let mut pair = |id: usize| {
            let [dc, ac] = std::mem::take(&mut found[id]);
            HuffmanPair {
                dc: dc.expect("the standard DC table"),
                ac: ac.expect("the standard AC table"),
            }
        };
        StandardHuffman {
            segments,
            pairs: [pair(0), pair(1)],
        }
    })
}

/// Everything a frame's encoding reads.
struct Tables {
    luma_q: [u8; 64],
    chroma_q: [u8; 64],
    luma: [i32; 64],
    chroma: [i32; 64],
    huffman: &'static [HuffmanPair; 2],
    segments: &'static [u8],
}

impl Tables {
    fn new(quality: u8) -> Tables {
        let (luma_q, chroma_q) = (scaled(&LUMA_Q, quality), scaled(&CHROMA_Q, quality));
        let standard = standard_huffman();
        Tables {
            luma: multipliers(&luma_q),
            chroma: multipliers(&chroma_q),
            luma_q,
            chroma_q,
            huffman: &standard.pairs,
            segments: standard.segments,
        }
    }
}

fn write_headers(out: &mut Vec<u8>, width: usize, height: usize, tables: &Tables) {
    out.extend_from_slice(&[0xFF, 0xD8]);
    out.extend_from_slice(&[
        0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0,
    ]);
    for (id, table) in [(0u8, &tables.luma_q), (1, &tables.chroma_q)] {
        out.extend_from_slice(&[0xFF, 0xDB, 0, 67, id]);
        out.extend(ZIGZAG.iter().map(|&n| table[n]));
    }
    let [h1, h0] = (height as u16).to_be_bytes();
    let [w1, w0] = (width as u16).to_be_bytes();
    out.extend_from_slice(&[
        0xFF, 0xC0, 0, 17, 8, h1, h0, w1, w0, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1,
    ]);
    out.extend_from_slice(tables.segments);
    out.extend_from_slice(&[0xFF, 0xDA, 0, 12, 3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]);
}

/// The entropy-coded data being written, with its pending bits.
struct Bits {
    bytes: Vec<u8>,
    acc: u64,
    pending: u32,
}

impl Bits {
    fn new(capacity: usize) -> Bits {
        Bits {
            bytes: Vec::with_capacity(capacity),
            acc: 0,
            pending: 0,
        }
    }

    /// Appends the low `len` bits of `value` (`len` at most 32).
    #[inline(always)]
    fn put(&mut self, value: u32, len: u32) {
        self.acc = (self.acc << len) | u64::from(value);
        self.pending += len;
        if self.pending >= 32 {
            self.pending -= 32;
            self.word((self.acc >> self.pending) as u32);
        }
    }

    /// Writes four whole bytes, each 0xFF followed by a stuffed zero.
    #[inline(always)]
    fn word(&mut self, w: u32) {
        // A byte of `w` is 0xFF exactly when that byte of `!w` is zero.
        let inv = !w;
        if inv.wrapping_sub(0x0101_0101) & w & 0x8080_8080 == 0 {
            self.bytes.extend_from_slice(&w.to_be_bytes());
        } else {
            for b in w.to_be_bytes() {
                self.bytes.push(b);
                if b == 0xFF {
                    self.bytes.push(0);
                }
            }
        }
    }

    /// Codes one quantised block, `dc` holding the component's previous DC value.
    #[inline(always)]
    fn block<const AVX2: bool>(&mut self, block: &[i32; 64], dc: &mut i32, tables: &HuffmanPair) {
        let diff = block[0] - *dc;
        *dc = block[0];
        let (size, bits) = magnitude(diff);
        let symbol = size as usize;
        self.put(
            (u32::from(tables.dc.code[symbol]) << size) | bits,
            u32::from(tables.dc.len[symbol]) + size,
        );

        let mut zigzag = [0i32; 64];
        for (z, &n) in zigzag.iter_mut().zip(ZIGZAG_TRANSPOSED.iter()) {
            *z = block[n];
        }
        let mut nonzero = nonzero_mask::<AVX2>(&zigzag) & !1;
        let mut last = 0u32;
        while nonzero != 0 {
            let k = nonzero.trailing_zeros();
            nonzero &= nonzero - 1;
            let mut run = k - last - 1;
            while run > 15 {
                self.put(
                    u32::from(tables.ac.code[0xF0]),
                    u32::from(tables.ac.len[0xF0]),
                );
                run -= 16;
            }
            let (size, bits) = magnitude(zigzag[k as usize]);
            let symbol = ((run << 4) | size) as usize;
            self.put(
                (u32::from(tables.ac.code[symbol]) << size) | bits,
                u32::from(tables.ac.len[symbol]) + size,
            );
            last = k;
        }
        if last != 63 {
            self.put(u32::from(tables.ac.code[0]), u32::from(tables.ac.len[0]));
        }
    }

    /// Pads the last byte with ones, then ends the picture.
    fn finish(mut self) -> Vec<u8> {
        let pad = (8 - self.pending % 8) % 8;
        self.put((1 << pad) - 1, pad);
        while self.pending >= 8 {
            self.pending -= 8;
            let b = (self.acc >> self.pending) as u8;
            self.bytes.push(b);
            if b == 0xFF {
                self.bytes.push(0);
            }
        }
        self.bytes.extend_from_slice(&[0xFF, 0xD9]);
        self.bytes
    }
}

/// Bit i set where coefficient i is not zero.
#[inline(always)]
fn nonzero_mask<const AVX2: bool>(coefficients: &[i32; 64]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if AVX2 {
        // SAFETY: only `encode_avx2` runs the encoder with `AVX2`, and only on a processor
        // with AVX2.
        return unsafe { nonzero_mask_avx2(coefficients) };
    }
    let mut mask = 0u64;
    for (i, v) in coefficients.iter().enumerate() {
        mask |= u64::from(*v != 0) << i;
    }
    mask
}

/// [`nonzero_mask`], eight coefficients to a comparison.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn nonzero_mask_avx2(coefficients: &[i32; 64]) -> u64 {
    use std::arch::x86_64::*;
    let zero = _mm256_setzero_si256();
    let mut zeros = 0u64;
    for (i, eight) in coefficients.chunks_exact(8).enumerate() {
        // SAFETY: `eight` is eight i32 in a row, what the unaligned load reads.
        let v = unsafe { _mm256_loadu_si256(eight.as_ptr().cast()) };
        let is_zero = _mm256_castsi256_ps(_mm256_cmpeq_epi32(v, zero));
        zeros |= u64::from(_mm256_movemask_ps(is_zero) as u8) << (i * 8);
    }
    !zeros
}

/// A coefficient's size category and the bits that follow its code: the value itself
/// when positive, its ones' complement when negative.
#[inline(always)]
fn magnitude(v: i32) -> (u32, u32) {
    let size = 32 - v.unsigned_abs().leading_zeros();
    let bits = if v < 0 { v - 1 } else { v } as u32;
    (size, bits & ((1u32 << size) - 1))
}

#[cfg(test)]
mod tests {
    use super::super::tests::decode;
    use super::*;

    /// A YUYV picture with detail, colour and fine noise, and its RGB.
    fn scene(w: usize, h: usize) -> Vec<u8> {
        let mut yuyv = Vec::with_capacity(w * h * 2);
        let mut seed = 12345u32;
        for y in 0..h {
            for x in (0..w).step_by(2) {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let noise = (seed >> 28) as usize;
                let luma = |x: usize| (16 + (x * 7 + y * 3) % 200 + noise) as u8;
                let cb = (64 + (x / 8) % 128) as u8;
                let cr = (64 + (y / 8) % 128) as u8;
                yuyv.extend_from_slice(&[luma(x), cb, luma(x + 1), cr]);
            }
        }
        yuyv
    }

    /// The mean absolute difference of two pictures of the same size.
    fn mean_difference(a: &[u8], b: &[u8]) -> f64 {
        assert_eq!(a.len(), b.len());
        let total: u64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| u64::from(x.abs_diff(*y)))
            .sum();
        total as f64 / a.len() as f64
    }

    fn reference(yuyv: &[u8], w: usize, h: usize) -> Vec<u8> {
        // The same frame through jpeg-encoder, a separate implementation.
        let jpeg = super::super::encode_raw_with_jpeg_encoder(yuyv, w as u16, h as u16, 90);
        decode(&jpeg).2
    }

    #[test]
    fn pictures_decode_to_what_another_encoder_makes_of_them() {
        // Sizes that are and are not whole MCUs, so the padding is covered.
        for (w, h) in [(64, 32), (320, 240), (322, 242), (18, 10)] {
            let yuyv = scene(w, h);
            let jpeg = encode(Layout::Yuyv, &yuyv, w, h, 90);
            let (dw, dh, ours) = decode(&jpeg);
            assert_eq!((dw, dh), (w, h));
            let diff = mean_difference(&ours, &reference(&yuyv, w, h));
            assert!(diff < 2.0, "{w}x{h}: mean difference {diff}");
        }
    }

    #[test]
    fn the_portable_encoder_writes_what_the_vector_one_writes() {
        // On a processor without AVX2 the portable copy runs; it must not differ.
        let (w, h) = (322, 242);
        let yuyv = scene(w, h);
        assert_eq!(
            encode_any::<false>(Layout::Yuyv, &yuyv, w, h, 80),
            encode(Layout::Yuyv, &yuyv, w, h, 80)
        );
    }

    #[test]
    fn uyvy_and_nv12_give_the_picture_yuyv_gives() {
        let (w, h) = (96, 64);
        let yuyv = scene(w, h);
        let uyvy: Vec<u8> = yuyv
            .chunks_exact(4)
            .flat_map(|p| [p[1], p[0], p[3], p[2]])
            .collect();
        let mut nv12: Vec<u8> = yuyv.chunks_exact(2).map(|p| p[0]).collect();
        for y in (0..h).step_by(2) {
            let (a, b) = (
                &yuyv[y * w * 2..][..w * 2],
                &yuyv[(y + 1) * w * 2..][..w * 2],
            );
            for (a, b) in a.chunks_exact(4).zip(b.chunks_exact(4)) {
                nv12.push((u16::from(a[1]) + u16::from(b[1])).div_ceil(2) as u8);
                nv12.push((u16::from(a[3]) + u16::from(b[3])).div_ceil(2) as u8);
            }
        }
        let from_yuyv = encode(Layout::Yuyv, &yuyv, w, h, 80);
        assert_eq!(encode(Layout::Uyvy, &uyvy, w, h, 80), from_yuyv);
        assert_eq!(encode(Layout::Nv12, &nv12, w, h, 80), from_yuyv);
    }

    #[test]
    fn quality_trades_size_for_fidelity() {
        let (w, h) = (160, 128);
        let yuyv = scene(w, h);
        let reference = reference(&yuyv, w, h);
        let low = encode(Layout::Yuyv, &yuyv, w, h, 20);
        let high = encode(Layout::Yuyv, &yuyv, w, h, 95);
        assert!(
            low.len() < high.len() / 2,
            "{} vs {}",
            low.len(),
            high.len()
        );
        let (low_diff, high_diff) = (
            mean_difference(&decode(&low).2, &reference),
            mean_difference(&decode(&high).2, &reference),
        );
        assert!(high_diff < low_diff, "{high_diff} vs {low_diff}");
        // Quality 1 and 100 stay within baseline's tables and still decode.
        for q in [1, 100] {
            assert_eq!(decode(&encode(Layout::Yuyv, &yuyv, w, h, q)).0, w);
        }
    }

    #[test]
    fn byte_stuffing_and_long_zero_runs_decode() {
        // Flat areas give runs of more than 16 zero coefficients; noise gives 0xFF bytes.
        let (w, h) = (256, 64);
        let mut yuyv = scene(w, h);
        yuyv[..w * 2 * 16].fill(128);
        let jpeg = encode(Layout::Yuyv, &yuyv, w, h, 100);
        let data = &jpeg[jpeg.windows(2).position(|p| p == [0xFF, 0xDA]).unwrap()..];
        assert!(
            data.windows(2).any(|p| p == [0xFF, 0x00]),
            "no stuffed byte"
        );
        assert_eq!(decode(&jpeg).0, w);
    }
}
