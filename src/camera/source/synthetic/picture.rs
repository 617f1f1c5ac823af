//! The synthetic camera's picture: test patterns that move, and the colour work a camera
//! would do (brightness, contrast, YUYV).

use crate::config::Pattern;

/// Fills `rgb` with `pattern` moved to frame `index`; the picture crosses in 4 seconds.
pub(super) fn draw_pattern(
    rgb: &mut [u8],
    w: usize,
    h: usize,
    pattern: Pattern,
    index: u64,
    fps: u32,
    flip: bool,
) {
    const BARS: [[u8; 3]; 8] = [
        [235, 235, 235],
        [235, 235, 16],
        [16, 235, 235],
        [16, 235, 16],
        [235, 16, 235],
        [235, 16, 16],
        [16, 16, 235],
        [16, 16, 16],
    ];
    let shift = (index as usize * w / (fps as usize * 4).max(1)) % w;
    for y in 0..h {
        let row = &mut rgb[y * w * 3..(y + 1) * w * 3];
        for x in 0..w {
            let sx = if flip { w - 1 - x } else { x };
            let px = (sx + shift) % w;
            let c = match pattern {
                Pattern::Bars => BARS[px * 8 / w],
                Pattern::Gradient => [(px * 255 / w) as u8, (y * 255 / h) as u8, 128],
                Pattern::Noise => {
                    // Bars under noise that changes every frame, so frames compress
                    // about as badly as a real scene.
                    let mut n = (x as u64 ^ (y as u64) << 20 ^ index << 40)
                        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
                    n ^= n >> 29;
                    let bar = BARS[px * 8 / w];
                    let jitter = (n & 0x0F) as u8;
                    [
                        bar[0].saturating_sub(jitter),
                        bar[1].saturating_sub(jitter >> 1),
                        bar[2].saturating_sub(jitter),
                    ]
                }
                Pattern::Checkers => {
                    let on = ((px / 40) + ((y + shift) / 40)) % 2 == 0;
                    if on {
                        [220, 220, 220]
                    } else {
                        [30, 30, 90]
                    }
                }
            };
            row[x * 3..x * 3 + 3].copy_from_slice(&c);
        }
    }
}

/// Converts RGB to packed YUYV (BT.601, studio range), as a webcam delivers it.
pub(super) fn rgb_to_yuyv(rgb: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rgb.len() / 3 * 2);
    for pair in rgb.chunks_exact(6) {
        let px = |i: usize| {
            (
                i32::from(pair[i]),
                i32::from(pair[i + 1]),
                i32::from(pair[i + 2]),
            )
        };
        let (r0, g0, b0) = px(0);
        let (r1, g1, b1) = px(3);
        let y = |r: i32, g: i32, b: i32| (((66 * r + 129 * g + 25 * b + 128) >> 8) + 16) as u8;
        let (r, g, b) = ((r0 + r1) / 2, (g0 + g1) / 2, (b0 + b1) / 2);
        let u = (((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128) as u8;
        let v = (((112 * r - 94 * g - 18 * b + 128) >> 8) + 128) as u8;
        out.extend_from_slice(&[y(r0, g0, b0), u, y(r1, g1, b1), v]);
    }
    out
}

/// Applies brightness and contrast (128 is neutral for both) through a lookup table.
pub(super) fn adjust(rgb: &mut [u8], brightness: i64, contrast: i64) {
    if brightness == 128 && contrast == 128 {
        return;
    }
    let lut: Vec<u8> = (0..256i64)
        .map(|v| ((v - 128) * contrast / 128 + 128 + (brightness - 128)).clamp(0, 255) as u8)
        .collect();
    for v in rgb.iter_mut() {
        *v = lut[*v as usize];
    }
}
