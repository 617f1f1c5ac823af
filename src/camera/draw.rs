//! Drawing text into RGB pictures, for synthetic frames and the NO SIGNAL placeholder.

/// Draws text lines in white on a dark box in the top-left corner.
pub fn text(rgb: &mut [u8], w: usize, h: usize, lines: &[String]) {
    let scale = (h / 240).max(1);
    let glyph = 8 * scale;
    let longest = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let box_w = ((longest * glyph) + 2 * scale).min(w);
    let box_h = ((lines.len() * (glyph + scale)) + 2 * scale).min(h);
    for y in 0..box_h {
        for v in &mut rgb[y * w * 3..(y * w + box_w) * 3] {
            *v /= 4;
        }
    }
    for (row, line) in lines.iter().enumerate() {
        for (col, ch) in line.chars().enumerate() {
            let bitmap = font8x8::legacy::BASIC_LEGACY
                .get(ch as usize)
                .copied()
                .unwrap_or(font8x8::legacy::BASIC_LEGACY[b'?' as usize]);
            let (x0, y0) = (scale + col * glyph, scale + row * (glyph + scale));
            for (gy, bits) in bitmap.iter().enumerate() {
                for gx in 0..8 {
                    if bits & (1 << gx) == 0 {
                        continue;
                    }
                    for dy in 0..scale {
                        for dx in 0..scale {
                            let (x, y) = (x0 + gx * scale + dx, y0 + gy * scale + dy);
                            if x < w && y < h {
                                rgb[(y * w + x) * 3..(y * w + x) * 3 + 3].fill(255);
                            }
                        }
                    }
                }
            }
        }
    }
}
