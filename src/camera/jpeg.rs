//! JPEG on the camera side: checking frames a device hands over as JPEG, encoding raw
//! formats, and the NO SIGNAL placeholder.

use std::sync::OnceLock;

use bytes::Bytes;
use jpeg_encoder::{ColorType, Encoder};
#[cfg(test)]
use jpeg_encoder::{ImageBuffer, JpegColorType};

use super::source::FourCc;

mod yuv;

/// Length of the complete JPEG at the start of `data`, up to and including its end
/// marker, or `None` if it is truncated, not a JPEG, or holds no picture (no frame header
/// and scan before its end). Devices may report a buffer larger than the picture; the
/// bytes after the end marker are not part of it.
#[must_use]
pub fn complete_len(data: &[u8]) -> Option<usize> {
    if data.len() < 4 || data[0] != 0xFF || data[1] != 0xD8 {
        return None;
    }
    let (mut frame, mut scan) = (false, false);
    let mut i = 2;
    loop {
        if i + 1 >= data.len() || data[i] != 0xFF {
            return None;
        }
        let marker = data[i + 1];
        match marker {
            0xFF => i += 1,
            0xD9 => return (frame && scan).then_some(i + 2),
            0x01 | 0xD0..=0xD7 => i += 2,
            _ => {
                let len = usize::from(u16::from_be_bytes([*data.get(i + 2)?, *data.get(i + 3)?]));
                if len < 2 {
                    return None;
                }
                i += 2 + len;
                // SOF0 to SOF15, but DHT (C4), JPG (C8) and DAC (CC), which share the range.
                frame |= matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
                if marker == 0xDA {
                    scan = true;
                    i = end_of_entropy_data(data, i)?;
                }
            }
        }
    }
}

/// Skips entropy-coded data, where 0xFF is followed by 0x00 (a stuffed byte) or a restart
/// marker; returns the position of the next real marker.
fn end_of_entropy_data(data: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let j = i + data.get(i..)?.iter().position(|b| *b == 0xFF)?;
        match *data.get(j + 1)? {
            0x00 | 0xD0..=0xD7 => i = j + 2,
            0xFF => i = j + 1,
            _ => return Some(j),
        }
    }
}

/// The header segments of a JPEG, each as (marker, the whole segment), up to the start of
/// the picture data (SOS) or the first malformed byte.
fn header_segments(jpeg: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut i = 2;
    std::iter::from_fn(move || {
        if i + 3 >= jpeg.len() || jpeg[i] != 0xFF || jpeg[i + 1] == 0xDA {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        let segment = jpeg.get(i..i + 2 + len)?;
        i += 2 + len;
        Some((segment[1], segment))
    })
}

/// Whether the JPEG carries its Huffman tables. Many USB cameras leave them out of MJPEG
/// frames and rely on the standard ones, which browsers do not assume.
fn has_huffman_tables(jpeg: &[u8]) -> bool {
    header_segments(jpeg).any(|(marker, _)| marker == 0xC4)
}

/// The standard Huffman tables (JPEG Annex K) as DHT segments, taken from the encoder,
/// which uses exactly these.
fn standard_huffman_segments() -> &'static [u8] {
    static SEGMENTS: OnceLock<Vec<u8>> = OnceLock::new();
    SEGMENTS.get_or_init(|| {
        let mut tiny = Vec::new();
        Encoder::new(&mut tiny, 50)
            .encode(&[0u8; 8 * 8 * 3], 8, 8, ColorType::Rgb)
            .expect("an 8x8 picture encodes");
        header_segments(&tiny)
            .filter(|(marker, _)| *marker == 0xC4)
            .flat_map(|(_, segment)| segment.iter().copied())
            .collect()
    })
}

/// Turns a device's JPEG into one every decoder takes: cut at its end marker, with the
/// standard Huffman tables added if it lacks them. `None` if it is truncated or corrupt.
#[must_use]
pub fn normalize(data: &[u8]) -> Option<Bytes> {
    let len = complete_len(data)?;
    let jpeg = &data[..len];
    if has_huffman_tables(jpeg) {
        return Some(Bytes::copy_from_slice(jpeg));
    }
    let tables = standard_huffman_segments();
    let mut out = Vec::with_capacity(len + tables.len());
    out.extend_from_slice(&jpeg[..2]);
    out.extend_from_slice(tables);
    out.extend_from_slice(&jpeg[2..]);
    Some(Bytes::from(out))
}

/// Whether camfleet can encode this raw pixel format.
#[must_use]
pub fn can_encode(fourcc: FourCc) -> bool {
    matches!(
        &fourcc.0,
        b"YUYV" | b"UYVY" | b"NV12" | b"RGB3" | b"BGR3" | b"GREY"
    )
}

/// Bytes one frame of a raw format takes, if camfleet knows the format.
#[must_use]
pub fn raw_frame_len(fourcc: FourCc, width: u32, height: u32) -> Option<usize> {
    let px = width as usize * height as usize;
    Some(match &fourcc.0 {
        b"YUYV" | b"UYVY" => px * 2,
        b"NV12" => px * 3 / 2,
        b"RGB3" | b"BGR3" => px * 3,
        b"GREY" => px,
        _ => return None,
    })
}

/// Packed 4:2:2 YCbCr, two pixels in four bytes; `y0` is the offset of the first luma
/// byte (0 for YUYV, 1 for UYVY). The tests encode through it with jpeg-encoder, as a
/// reference for camfleet's own YCbCr encoder.
#[cfg(test)]
struct Packed422<'a> {
    data: &'a [u8],
    width: u16,
    height: u16,
    y0: usize,
}

#[cfg(test)]
impl ImageBuffer for Packed422<'_> {
    fn get_jpeg_color_type(&self) -> JpegColorType {
        JpegColorType::Ycbcr
    }
    fn width(&self) -> u16 {
        self.width
    }
    fn height(&self) -> u16 {
        self.height
    }
    fn fill_buffers(&self, y: u16, buffers: &mut [Vec<u8>; 4]) {
        let w = usize::from(self.width);
        let row = &self.data[usize::from(y) * w * 2..][..w * 2];
        let (c0, c1) = if self.y0 == 0 { (1, 3) } else { (0, 2) };
        for pair in row.chunks_exact(4) {
            let (cb, cr) = (pair[c0], pair[c1]);
            buffers[0].push(pair[self.y0]);
            buffers[0].push(pair[self.y0 + 2]);
            buffers[1].extend_from_slice(&[cb, cb]);
            buffers[2].extend_from_slice(&[cr, cr]);
        }
    }
}

/// Encodes one raw frame as JPEG at `quality` (1 to 100).
///
/// # Errors
/// When the pixel format is not one camfleet encodes, or the buffer is shorter than a
/// frame of that size.
pub fn encode_raw(
    fourcc: FourCc,
    width: u32,
    height: u32,
    data: &[u8],
    quality: u8,
) -> Result<Bytes, String> {
    let need = raw_frame_len(fourcc, width, height)
        .ok_or_else(|| format!("pixel format {fourcc} cannot be encoded"))?;
    if data.len() < need {
        return Err(format!(
            "a {width}x{height} {fourcc} frame needs {need} bytes, the device gave {}",
            data.len()
        ));
    }
    let layout = match &fourcc.0 {
        b"YUYV" => Some(yuv::Layout::Yuyv),
        b"UYVY" => Some(yuv::Layout::Uyvy),
        b"NV12" => Some(yuv::Layout::Nv12),
        _ => None,
    };
    let (Ok(w), Ok(h)) = (u16::try_from(width), u16::try_from(height)) else {
        return Err(format!(
            "a {width}x{height} frame is larger than JPEG allows"
        ));
    };
    if w == 0 || h == 0 {
        return Err(format!("a {width}x{height} frame has no pixels"));
    }
    if let Some(layout) = layout {
        if width % 2 == 1 {
            return Err(format!(
                "a {fourcc} frame cannot be {width} pixels wide: its width is even"
            ));
        }
        let (w, h) = (usize::from(w), usize::from(h));
        return Ok(Bytes::from(yuv::encode(layout, data, w, h, quality)));
    }
    let mut out = Vec::with_capacity(need / 8);
    let encoder = Encoder::new(&mut out, quality);
    let done = match &fourcc.0 {
        b"RGB3" => encoder.encode(data, w, h, ColorType::Rgb),
        b"BGR3" => encoder.encode(data, w, h, ColorType::Bgr),
        _ => encoder.encode(data, w, h, ColorType::Luma),
    };
    done.map_err(|e| format!("encoding a {fourcc} frame failed: {e}"))?;
    Ok(Bytes::from(out))
}

/// A YUYV frame encoded by jpeg-encoder, the reference the tests hold camfleet's own
/// encoder to.
#[cfg(test)]
fn encode_raw_with_jpeg_encoder(yuyv: &[u8], width: u16, height: u16, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let frame = Packed422 {
        data: yuyv,
        width,
        height,
        y0: 0,
    };
    Encoder::new(&mut out, quality).encode_image(frame).unwrap();
    out
}

/// A copy of `jpeg` at most `width` pixels wide (the height in proportion), for previews
/// and thumbnails; a picture that is no wider is returned as it is. The picture is decoded
/// already scaled down in the DCT (by 1/2, 1/4 or 1/8, to the smallest size at least as
/// large), so most of it is never decoded at full size, then averaged down to the width.
///
/// # Errors
/// When `jpeg` does not decode.
pub fn thumbnail(jpeg: &Bytes, width: u32, quality: u8) -> Result<Bytes, String> {
    let mut decoder = jpeg_decoder::Decoder::new(jpeg.as_ref());
    let bad = |e: jpeg_decoder::Error| format!("the frame does not decode: {e}");
    decoder.read_info().map_err(bad)?;
    let info = decoder.info().ok_or("the frame has no size")?;
    let (full_w, full_h) = (usize::from(info.width), usize::from(info.height));
    let to_w = width as usize;
    if full_w <= to_w || full_w == 0 || full_h == 0 {
        return Ok(jpeg.clone());
    }
    let to_h = (full_h * to_w / full_w).max(1);
    let (w, h) = decoder.scale(to_w as u16, to_h as u16).map_err(bad)?;
    let pixels = decoder.decode().map_err(bad)?;
    let (w, h) = (usize::from(w), usize::from(h));
    if w == 0 || h == 0 {
        return Err("the frame has no size".into());
    }
    let channels = pixels.len() / (w * h);
    if channels != 1 && channels != 3 {
        return Err(format!("the frame decodes to {channels} channels"));
    }
    let to_h = (h * to_w / w).max(1);
    // Each thumbnail pixel is the mean of the block of source pixels it covers.
    let mut out = vec![0u8; to_w * to_h * 3];
    for ty in 0..to_h {
        let (y0, y1) = (ty * h / to_h, ((ty + 1) * h / to_h).max(ty * h / to_h + 1));
        for tx in 0..to_w {
            let (x0, x1) = (tx * w / to_w, ((tx + 1) * w / to_w).max(tx * w / to_w + 1));
            let mut sum = [0usize; 3];
            for y in y0..y1 {
                for x in x0..x1 {
                    let p = (y * w + x) * channels;
                    for (c, s) in sum.iter_mut().enumerate() {
                        *s += usize::from(pixels[p + c.min(channels - 1)]);
                    }
                }
            }
            let n = (y1 - y0) * (x1 - x0);
            let o = (ty * to_w + tx) * 3;
            for c in 0..3 {
                out[o + c] = u8::try_from(sum[c] / n).unwrap_or(u8::MAX);
            }
        }
    }
    let (Ok(tw), Ok(th)) = (u16::try_from(to_w), u16::try_from(to_h)) else {
        return Err(format!("a {to_w}x{to_h} thumbnail is too large"));
    };
    let mut encoded = Vec::with_capacity(to_w * to_h / 4);
    Encoder::new(&mut encoded, quality)
        .encode(&out, tw, th, ColorType::Rgb)
        .map_err(|e| format!("encoding the thumbnail failed: {e}"))?;
    Ok(Bytes::from(encoded))
}

/// The picture of an H.264 keyframe (an access unit with its parameter sets) as JPEG,
/// for snapshots of a camera that sends H.264.
///
/// # Errors
/// When the access unit does not decode to a picture on its own.
pub fn from_h264_keyframe(access_unit: &[u8], quality: u8) -> Result<Bytes, String> {
    use openh264::formats::YUVSource;
    let bad = |e: openh264::Error| format!("the H.264 keyframe does not decode: {e}");
    let mut decoder = openh264::decoder::Decoder::new().map_err(bad)?;
    let picture = match decoder.decode(access_unit).map_err(bad)? {
        Some(picture) => picture,
        // A decoder may hold a picture back until it is told the stream ended.
        None => decoder
            .flush_remaining()
            .map_err(bad)?
            .pop()
            .ok_or("the H.264 keyframe holds no picture")?,
    };
    let (w, h) = picture.dimensions();
    let (Ok(tw), Ok(th)) = (u16::try_from(w), u16::try_from(h)) else {
        return Err(format!("a {w}x{h} picture is too large for JPEG"));
    };
    let mut rgb = vec![0u8; w * h * 3];
    picture.write_rgb8(&mut rgb);
    let mut encoded = Vec::with_capacity(w * h / 4);
    Encoder::new(&mut encoded, quality)
        .encode(&rgb, tw, th, ColorType::Rgb)
        .map_err(|e| format!("encoding the picture failed: {e}"))?;
    Ok(Bytes::from(encoded))
}

/// A grey picture saying NO SIGNAL, the camera's name and the reason.
#[must_use]
pub fn placeholder(width: u32, height: u32, name: &str, reason: &str) -> Bytes {
    let (w, h) = (
        width.clamp(160, 1920) as usize,
        height.clamp(120, 1080) as usize,
    );
    let mut rgb = vec![48u8; w * h * 3];
    let mut lines = vec!["NO SIGNAL".to_string(), name.to_string()];
    let per_line = (w / (8 * (h / 240).max(1))).saturating_sub(1).max(8);
    let chars: Vec<char> = reason.chars().collect();
    lines.extend(chars.chunks(per_line).map(|c| c.iter().collect::<String>()));
    super::draw::text(&mut rgb, w, h, &lines);
    let mut out = Vec::new();
    // The size is clamped to at most 1920x1080 above, so it fits the encoder's u16s; an
    // encoder failure leaves an empty picture rather than failing the camera.
    let _ = Encoder::new(&mut out, 75).encode(&rgb, w as u16, h as u16, ColorType::Rgb);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JPEG's width, height and pixels, decoded by zune-jpeg.
    pub(super) fn decode(jpeg: &[u8]) -> (usize, usize, Vec<u8>) {
        let mut d = zune_jpeg::JpegDecoder::new(jpeg);
        let px = d.decode().expect("decodes");
        let (w, h) = d.dimensions().unwrap();
        (w, h, px)
    }

    #[test]
    fn a_thumbnail_keeps_the_proportions_and_the_picture() {
        // Left half black, right half white.
        let (w, h) = (640usize, 480usize);
        let rgb: Vec<u8> = (0..w * h)
            .flat_map(|i| if i % w < w / 2 { [0u8; 3] } else { [255u8; 3] })
            .collect();
        let mut jpeg = Vec::new();
        Encoder::new(&mut jpeg, 90)
            .encode(&rgb, w as u16, h as u16, ColorType::Rgb)
            .unwrap();
        let small = thumbnail(&Bytes::from(jpeg.clone()), 160, 80).unwrap();
        let (tw, th, px) = decode(&small);
        assert_eq!((tw, th), (160, 120));
        let at = |x: usize, y: usize| px[(y * tw + x) * 3];
        assert!(
            at(20, 60) < 30 && at(140, 60) > 225,
            "{} {}",
            at(20, 60),
            at(140, 60)
        );
        // Already small enough: the same bytes.
        assert_eq!(
            thumbnail(&Bytes::from(jpeg.clone()), 640, 80).unwrap(),
            jpeg
        );
    }

    #[test]
    fn yuyv_encodes_to_the_right_picture() {
        // Left half black, right half white, no colour.
        let (w, h) = (64usize, 16usize);
        let mut yuyv = Vec::new();
        for _ in 0..h {
            for x in (0..w).step_by(2) {
                let y = if x < w / 2 { 16 } else { 235 };
                yuyv.extend_from_slice(&[y, 128, y, 128]);
            }
        }
        let jpeg = encode_raw(FourCc(*b"YUYV"), w as u32, h as u32, &yuyv, 90).unwrap();
        let (dw, dh, px) = decode(&jpeg);
        assert_eq!((dw, dh), (w, h));
        let at = |x: usize| i32::from(px[(8 * w + x) * 3]);
        assert!(at(4) < 40 && at(60) > 215, "{} {}", at(4), at(60));
    }

    #[test]
    fn nv12_and_short_buffers() {
        let (w, h) = (32u32, 16u32);
        let nv12 = vec![128u8; (w * h * 3 / 2) as usize];
        assert!(encode_raw(FourCc(*b"NV12"), w, h, &nv12, 80).is_ok());
        let err = encode_raw(FourCc(*b"YUYV"), w, h, &nv12[..10], 80).unwrap_err();
        assert!(err.contains("needs 1024 bytes"), "{err}");
        assert!(encode_raw(FourCc(*b"H264"), w, h, &nv12, 80).is_err());
    }

    #[test]
    fn complete_len_finds_the_end_and_rejects_truncation() {
        let jpeg = placeholder(160, 120, "cam", "device unplugged");
        assert_eq!(complete_len(&jpeg), Some(jpeg.len()));
        let mut padded = jpeg.to_vec();
        padded.extend_from_slice(&[0u8; 5000]);
        assert_eq!(complete_len(&padded), Some(jpeg.len()));
        assert_eq!(complete_len(&jpeg[..jpeg.len() - 100]), None);
        assert_eq!(complete_len(&[0u8; 100]), None);
        assert_eq!(complete_len(&[]), None);
        // Found by fuzzing: a start and an end marker with no picture between them.
        assert_eq!(complete_len(&[0xFF, 0xD8, 0xFF, 0xD9]), None);
    }

    #[test]
    fn missing_huffman_tables_are_added() {
        let jpeg = placeholder(160, 120, "cam", "x");
        // Cut the DHT segments out, as many webcams do.
        let mut stripped = jpeg[..2].to_vec();
        let mut i = 2;
        loop {
            let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
            if jpeg[i + 1] == 0xDA {
                stripped.extend_from_slice(&jpeg[i..]);
                break;
            }
            if jpeg[i + 1] != 0xC4 {
                stripped.extend_from_slice(&jpeg[i..i + 2 + len]);
            }
            i += 2 + len;
        }
        assert!(!has_huffman_tables(&stripped));
        let fixed = normalize(&stripped).unwrap();
        assert_eq!(decode(&fixed).2, decode(&jpeg).2);
    }
}
