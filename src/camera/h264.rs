//! H.264 access units as cameras send them: Annex B byte streams, one access unit per
//! buffer.
//!
//! Nothing here decodes a picture. It finds the NAL units of an access unit, tells a
//! keyframe (an IDR picture) from the frames that depend on it, reads the sequence
//! parameter set for the picture's size and the codec's profile and level, and keeps the
//! newest parameter sets, so that every keyframe a viewer may start at carries them
//! ([`Stream`]). The frames since the last keyframe are kept by the frame slot
//! ([`crate::camera::frame::H264Frame`]). Every function takes bytes from a device and never panics on them.

use std::fmt;

/// NAL unit types (ITU-T H.264, table 7-1) that camfleet looks at.
pub mod nal {
    /// A slice of a picture that is not an IDR picture.
    pub const SLICE: u8 = 1;
    /// A slice of an IDR picture: decoding can start here.
    pub const IDR: u8 = 5;
    /// Supplemental enhancement information.
    pub const SEI: u8 = 6;
    /// Sequence parameter set.
    pub const SPS: u8 = 7;
    /// Picture parameter set.
    pub const PPS: u8 = 8;
    /// Access unit delimiter.
    pub const AUD: u8 = 9;
}

/// The NAL units of an Annex B byte stream, each without its start code and without the
/// zero bytes that pad it before the next one.
pub fn nal_units(stream: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = match find_start_code(stream) {
        Some((_, end)) => &stream[end..],
        None => &stream[stream.len()..],
    };
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (unit, next) = match find_start_code(rest) {
            Some((start, end)) => (&rest[..start], &rest[end..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        let trimmed = unit.len() - unit.iter().rev().take_while(|b| **b == 0).count();
        Some(&unit[..trimmed])
    })
    .filter(|unit| !unit.is_empty())
}

/// The first start code (`00 00 01`) in `data`: where it begins and where it ends.
fn find_start_code(data: &[u8]) -> Option<(usize, usize)> {
    data.windows(3)
        .position(|w| w == [0, 0, 1])
        .map(|start| (start, start + 3))
}

/// The type of a NAL unit, from its header byte.
#[must_use]
pub fn nal_type(unit: &[u8]) -> Option<u8> {
    unit.first().map(|header| header & 0x1f)
}

/// What one access unit holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccessUnit {
    /// It holds an IDR picture: a decoder can start with it.
    pub keyframe: bool,
    /// It carries a sequence parameter set.
    pub sps: bool,
    /// It carries a picture parameter set.
    pub pps: bool,
    /// It holds a slice of any picture.
    pub picture: bool,
}

impl AccessUnit {
    /// Reads the NAL unit types of one access unit.
    #[must_use]
    pub fn of(stream: &[u8]) -> AccessUnit {
        let mut au = AccessUnit::default();
        for unit in nal_units(stream) {
            match nal_type(unit) {
                Some(nal::IDR) => {
                    au.keyframe = true;
                    au.picture = true;
                }
                Some(nal::SLICE) => au.picture = true,
                Some(nal::SPS) => au.sps = true,
                Some(nal::PPS) => au.pps = true,
                _ => {}
            }
        }
        au
    }

    /// Whether a decoder that has seen nothing before can start here.
    #[must_use]
    pub fn starts_a_stream(self) -> bool {
        self.keyframe && self.sps && self.pps
    }
}

/// Why a sequence parameter set could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpsError(String);

impl fmt::Display for SpsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the camera's H.264 sequence parameter set {}", self.0)
    }
}

impl std::error::Error for SpsError {}

/// What a sequence parameter set says of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sps {
    pub profile_idc: u8,
    /// The constraint flags byte.
    pub constraints: u8,
    pub level_idc: u8,
    /// The picture's size in pixels, after cropping.
    pub width: u32,
    pub height: u32,
}

impl Sps {
    /// Reads a sequence parameter set NAL unit (header byte included).
    ///
    /// # Errors
    /// When the unit is not an SPS, or ends or overflows before the picture's size.
    pub fn parse(unit: &[u8]) -> Result<Sps, SpsError> {
        if nal_type(unit) != Some(nal::SPS) {
            return Err(SpsError("is not one (wrong NAL unit type)".into()));
        }
        let rbsp = unescape(&unit[1..]);
        let mut r = Bits::new(&rbsp);
        let profile_idc = r.byte()?;
        let constraints = r.byte()?;
        let level_idc = r.byte()?;
        r.ue()?; // seq_parameter_set_id
        let mut chroma_format_idc = 1;
        if matches!(
            profile_idc,
            100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
        ) {
            chroma_format_idc = r.ue()?;
            if chroma_format_idc == 3 {
                r.bit()?; // separate_colour_plane_flag
            }
            r.ue()?; // bit_depth_luma_minus8
            r.ue()?; // bit_depth_chroma_minus8
            r.bit()?; // qpprime_y_zero_transform_bypass_flag
            if r.bit()? {
                let lists = if chroma_format_idc == 3 { 12 } else { 8 };
                for i in 0..lists {
                    if r.bit()? {
                        skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                    }
                }
            }
        }
        r.ue()?; // log2_max_frame_num_minus4
        match r.ue()? {
            0 => {
                r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
            }
            1 => {
                r.bit()?; // delta_pic_order_always_zero_flag
                r.se()?; // offset_for_non_ref_pic
                r.se()?; // offset_for_top_to_bottom_field
                for _ in 0..r.ue()?.min(256) {
                    r.se()?; // offset_for_ref_frame
                }
            }
            _ => {}
        }
        r.ue()?; // max_num_ref_frames
        r.bit()?; // gaps_in_frame_num_value_allowed_flag
        let width_mbs = u64::from(r.ue()?) + 1;
        let height_map_units = u64::from(r.ue()?) + 1;
        let frame_mbs_only = r.bit()?;
        if !frame_mbs_only {
            r.bit()?; // mb_adaptive_frame_field_flag
        }
        r.bit()?; // direct_8x8_inference_flag
        let field_factor = if frame_mbs_only { 1 } else { 2 };
        let (mut crop_x, mut crop_y) = (0, 0);
        if r.bit()? {
            let (left, right) = (u64::from(r.ue()?), u64::from(r.ue()?));
            let (top, bottom) = (u64::from(r.ue()?), u64::from(r.ue()?));
            // Cropping counts in chroma samples: 4:2:0 and 4:2:2 halve the width, 4:2:0
            // the height; monochrome and 4:4:4 (planes apart or not) count in pixels.
            let (unit_x, unit_y) = match chroma_format_idc {
                1 => (2, 2 * field_factor),
                2 => (2, field_factor),
                _ => (1, field_factor),
            };
            crop_x = unit_x * (left + right);
            crop_y = unit_y * (top + bottom);
        }
        let full_width = width_mbs * 16;
        let full_height = field_factor * height_map_units * 16;
        let size = |full: u64, crop: u64, what: &str| {
            full.checked_sub(crop)
                .filter(|n| *n > 0)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| SpsError(format!("gives an impossible picture {what}")))
        };
        Ok(Sps {
            profile_idc,
            constraints,
            level_idc,
            width: size(full_width, crop_x, "width")?,
            height: size(full_height, crop_y, "height")?,
        })
    }

    /// The codec as `WebCodecs` and MP4 name it, e.g. `avc1.42c01f`.
    #[must_use]
    pub fn codec_string(&self) -> String {
        format!(
            "avc1.{:02x}{:02x}{:02x}",
            self.profile_idc, self.constraints, self.level_idc
        )
    }
}

fn skip_scaling_list(r: &mut Bits<'_>, size: usize) -> Result<(), SpsError> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            next = (last + i64::from(r.se()?) + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

/// A NAL unit's payload with the emulation prevention bytes (`00 00 03`) taken out.
fn unescape(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len());
    let mut zeros = 0;
    for &b in payload {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// A reader of the bits of a parameter set, most significant first.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Bits<'a> {
        Bits { data, pos: 0 }
    }

    fn bit(&mut self) -> Result<bool, SpsError> {
        let byte = self
            .data
            .get(self.pos / 8)
            .ok_or_else(|| SpsError("ends before the picture's size".into()))?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(bit == 1)
    }

    fn bits(&mut self, n: u32) -> Result<u32, SpsError> {
        let mut v = 0;
        for _ in 0..n {
            v = (v << 1) | u32::from(self.bit()?);
        }
        Ok(v)
    }

    fn byte(&mut self) -> Result<u8, SpsError> {
        // Eight bits always fit a byte.
        Ok(self.bits(8)? as u8)
    }

    /// An unsigned Exp-Golomb number.
    fn ue(&mut self) -> Result<u32, SpsError> {
        let mut zeros = 0;
        while !self.bit()? {
            zeros += 1;
            if zeros > 31 {
                return Err(SpsError("holds a number too large for 32 bits".into()));
            }
        }
        let rest = self.bits(zeros)?;
        Ok(((1u64 << zeros) - 1 + u64::from(rest)) as u32)
    }

    /// A signed Exp-Golomb number.
    fn se(&mut self) -> Result<i32, SpsError> {
        let k = i64::from(self.ue()?);
        let v = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        Ok(v as i32)
    }
}

/// How many frames a GOP may hold before camfleet stops keeping it: a camera that sends
/// no keyframe for this long gets no new viewer until it does.
pub const MAX_GOP_FRAMES: usize = 600;

/// A live stream's clock for players: 90 kHz ticks, each frame on the camera's nominal
/// frame grid, so a player sees the camera's exact rate; a gap (frames a viewer skipped)
/// shows as a jump in time.
#[derive(Debug, Clone)]
pub struct Clock {
    fps: f64,
    start: Option<std::time::SystemTime>,
    last: Option<u64>,
}

/// Ticks per second of [`Clock`], as RTP and MP4 count H.264 time.
pub const CLOCK_RATE: u32 = 90_000;

impl Clock {
    /// A clock for a camera of `fps` frames a second.
    #[must_use]
    pub fn new(fps: f64) -> Clock {
        Clock {
            fps: if fps > 0.0 { fps } else { 30.0 },
            start: None,
            last: None,
        }
    }

    /// Ticks of one frame.
    #[must_use]
    pub fn frame_ticks(&self) -> u32 {
        (f64::from(CLOCK_RATE) / self.fps).round() as u32
    }

    /// The time of a frame captured at `at`, in ticks since the first frame; always later
    /// than the frame before.
    pub fn ticks(&mut self, at: std::time::SystemTime) -> u64 {
        let start = *self.start.get_or_insert(at);
        let since = at.duration_since(start).unwrap_or_default().as_secs_f64();
        let mut index = (since * self.fps).round() as u64;
        if let Some(last) = self.last.filter(|l| index <= *l) {
            index = last + 1;
        }
        self.last = Some(index);
        (index as f64 * f64::from(CLOCK_RATE) / self.fps).round() as u64
    }
}

/// What camfleet keeps of a camera's H.264 stream between its access units: the newest
/// parameter sets, the codec they describe, and where the GOP stands.
#[derive(Debug, Default)]
pub struct Stream {
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
    codec: Option<std::sync::Arc<str>>,
    size: Option<(u32, u32)>,
    /// Frames since the last keyframe, that one included; `None` before the first.
    since_keyframe: Option<u64>,
    /// Frames in the last complete GOP.
    gop_length: Option<u64>,
}

/// An access unit as it is to be published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// The access unit: as the camera sent it, or for a keyframe that came without its
    /// parameter sets, with the newest ones put in front so a decoder can start there.
    pub bytes: bytes::Bytes,
    /// A decoder can start here.
    pub keyframe: bool,
}

/// Why an access unit cannot be published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// No keyframe with parameter sets has come yet: nothing can decode it.
    NoKeyframeYet,
    /// It holds no picture (only parameter sets or SEI); they are kept for the next
    /// keyframe.
    NoPicture,
}

impl Stream {
    /// Takes the camera's next access unit.
    ///
    /// # Errors
    /// When the unit cannot be decoded by a viewer; see [`Refused`].
    pub fn accept(&mut self, access_unit: bytes::Bytes) -> Result<Unit, Refused> {
        let au = AccessUnit::of(&access_unit);
        for unit in nal_units(&access_unit) {
            match nal_type(unit) {
                Some(nal::SPS) => {
                    if let Ok(sps) = Sps::parse(unit) {
                        if self.sps.as_deref() != Some(unit) {
                            self.codec = Some(sps.codec_string().into());
                            self.size = Some((sps.width, sps.height));
                        }
                        self.sps = Some(unit.to_vec());
                    }
                }
                Some(nal::PPS) => self.pps = Some(unit.to_vec()),
                _ => {}
            }
        }
        if !au.picture {
            return Err(Refused::NoPicture);
        }
        if !au.keyframe {
            return match self.since_keyframe.as_mut() {
                Some(n) => {
                    *n += 1;
                    Ok(Unit {
                        bytes: access_unit,
                        keyframe: false,
                    })
                }
                None => Err(Refused::NoKeyframeYet),
            };
        }
        let (Some(sps), Some(pps)) = (&self.sps, &self.pps) else {
            return Err(Refused::NoKeyframeYet);
        };
        let bytes = if au.sps && au.pps {
            access_unit
        } else {
            let mut whole = Vec::with_capacity(access_unit.len() + sps.len() + pps.len() + 8);
            for set in [sps, pps] {
                whole.extend_from_slice(&[0, 0, 0, 1]);
                whole.extend_from_slice(set);
            }
            whole.extend_from_slice(&access_unit);
            bytes::Bytes::from(whole)
        };
        if let Some(n) = self.since_keyframe {
            self.gop_length = Some(n);
        }
        self.since_keyframe = Some(1);
        Ok(Unit {
            bytes,
            keyframe: true,
        })
    }

    /// The codec string of the newest parameter sets, e.g. `avc1.42c01e`.
    #[must_use]
    pub fn codec(&self) -> Option<&std::sync::Arc<str>> {
        self.codec.as_ref()
    }

    /// The picture size the newest sequence parameter set gives.
    #[must_use]
    pub fn size(&self) -> Option<(u32, u32)> {
        self.size
    }

    /// The newest sequence and picture parameter sets (NAL units without start codes).
    #[must_use]
    pub fn parameter_sets(&self) -> Option<(&[u8], &[u8])> {
        Some((self.sps.as_deref()?, self.pps.as_deref()?))
    }

    /// Frames in the last complete GOP, from one keyframe to the next.
    #[must_use]
    pub fn gop_length(&self) -> Option<u64> {
        self.gop_length
    }

    /// Forgets the stream: the device was closed, and its next stream starts afresh.
    pub fn reset(&mut self) {
        *self = Stream::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openh264::encoder::{Encoder, EncoderConfig, IntraFramePeriod};
    use openh264::formats::YUVBuffer;
    use openh264::OpenH264API;

    /// `count` access units of a moving picture, encoded by `OpenH264` with a keyframe
    /// every `gop` frames.
    fn encoded(width: usize, height: usize, count: usize, gop: u32) -> Vec<Vec<u8>> {
        let config =
            EncoderConfig::new().intra_frame_period(IntraFramePeriod::from_num_frames(gop));
        let mut encoder = Encoder::with_api_config(OpenH264API::from_source(), config).unwrap();
        (0..count)
            .map(|n| {
                let mut yuv = vec![0u8; width * height * 3 / 2];
                for (i, p) in yuv[..width * height].iter_mut().enumerate() {
                    *p = ((i % width + n * 4) % 256) as u8;
                }
                yuv[width * height..].fill(128);
                let frame = YUVBuffer::from_vec(yuv, width, height);
                encoder.encode(&frame).unwrap().to_vec()
            })
            .collect()
    }

    #[test]
    fn keyframes_come_at_the_encoders_interval_with_their_parameter_sets() {
        let units = encoded(320, 240, 25, 10);
        let kinds: Vec<AccessUnit> = units.iter().map(|u| AccessUnit::of(u)).collect();
        let keyframes: Vec<usize> = (0..kinds.len()).filter(|i| kinds[*i].keyframe).collect();
        assert_eq!(keyframes, [0, 10, 20]);
        assert!(kinds[0].starts_a_stream());
        assert!(kinds.iter().all(|k| k.picture));
        assert!(!kinds[1].keyframe && !kinds[1].sps);
    }

    #[test]
    fn the_sps_gives_the_size_with_cropping_and_the_codec() {
        for (w, h) in [(320, 240), (640, 480), (1280, 720), (176, 100)] {
            let first = &encoded(w, h, 1, 30)[0];
            let sps = nal_units(first)
                .find(|u| nal_type(u) == Some(nal::SPS))
                .expect("an SPS in the first access unit");
            let sps = Sps::parse(sps).unwrap();
            assert_eq!((sps.width, sps.height), (w as u32, h as u32));
            assert!(
                sps.codec_string().starts_with("avc1."),
                "{}",
                sps.codec_string()
            );
            assert_eq!(sps.codec_string().len(), 11);
        }
    }

    #[test]
    fn nal_units_split_on_three_and_four_byte_start_codes() {
        let stream = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 0,
        ];
        let units: Vec<&[u8]> = nal_units(&stream).collect();
        assert_eq!(units, [&[0x67, 1, 2][..], &[0x68, 3], &[0x65, 4]]);
        assert_eq!(nal_units(&[]).count(), 0);
        assert_eq!(nal_units(&[1, 2, 3]).count(), 0);
    }

    #[test]
    fn emulation_prevention_is_taken_out() {
        assert_eq!(
            unescape(&[0, 0, 3, 1, 0, 0, 3, 0, 3]),
            [0, 0, 1, 0, 0, 0, 3]
        );
    }

    #[test]
    fn a_broken_sps_is_an_error_not_a_panic() {
        let first = &encoded(320, 240, 1, 30)[0];
        let sps = nal_units(first)
            .find(|u| nal_type(u) == Some(nal::SPS))
            .unwrap();
        for cut in 0..sps.len() {
            let _ = Sps::parse(&sps[..cut]);
        }
        assert!(Sps::parse(&[0x68, 1, 2]).is_err());
        // All ones, all zeros: numbers too large and streams cut short.
        assert!(Sps::parse(&[0x67, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0]).is_err());
        let err = Sps::parse(&[0x67, 66, 0, 30]).unwrap_err();
        assert!(err.to_string().contains("ends before"), "{err}");
    }

    #[test]
    fn a_keyframe_without_parameter_sets_gets_the_newest_ones_in_front() {
        let units = encoded(160, 120, 12, 10);
        let mut stream = Stream::default();
        // A camera that sends its parameter sets once, then bare IDR pictures.
        let strip = |au: &[u8]| -> Vec<u8> {
            let mut out = Vec::new();
            for unit in nal_units(au) {
                if !matches!(nal_type(unit), Some(nal::SPS | nal::PPS)) {
                    out.extend_from_slice(&[0, 0, 0, 1]);
                    out.extend_from_slice(unit);
                }
            }
            out
        };
        assert_eq!(
            stream.accept(bytes::Bytes::from(strip(&units[0]))),
            Err(Refused::NoKeyframeYet)
        );
        let first = stream.accept(bytes::Bytes::from(units[0].clone())).unwrap();
        assert!(first.keyframe);
        assert_eq!(
            first.bytes, units[0],
            "a whole keyframe is passed untouched"
        );
        for unit in &units[1..10] {
            let u = stream.accept(bytes::Bytes::from(unit.clone())).unwrap();
            assert!(!u.keyframe);
            assert_eq!(u.bytes, *unit);
        }
        let bare = strip(&units[10]);
        let second = stream.accept(bytes::Bytes::from(bare.clone())).unwrap();
        assert!(second.keyframe && AccessUnit::of(&second.bytes).starts_a_stream());
        assert!(second.bytes.ends_with(&bare));
        assert_eq!(stream.gop_length(), Some(10));
        assert_eq!(stream.codec().map(|c| c.len()), Some(11));
        assert_eq!(stream.size(), Some((160, 120)));
    }
}
