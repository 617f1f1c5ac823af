//! Fragmented MP4 (ISO/IEC 14496-12 and -15) for H.264 access units, as players read a
//! live stream: one initialisation segment, then fragments of whole frames.
//!
//! The pictures are not touched: each access unit's NAL units are copied with a length in
//! front of each instead of a start code, and the parameter sets go into the
//! initialisation segment, once. Plain code with no I/O.

use crate::camera::h264::{nal, nal_type, nal_units};

/// Ticks per second of the track's clock (the one MPEG streams use).
pub const TIMESCALE: u32 = 90_000;

/// What the initialisation segment says of the one video track.
#[derive(Debug, Clone)]
pub struct Track {
    pub width: u32,
    pub height: u32,
    /// The sequence and picture parameter set NAL units, header byte included.
    pub sps: Vec<u8>,
    pub pps: Vec<u8>,
}

/// One frame of a fragment.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    /// The access unit, Annex B (start codes).
    pub access_unit: &'a [u8],
    /// How long it shows, in [`TIMESCALE`] ticks.
    pub duration: u32,
    pub keyframe: bool,
}

/// Writes a box: its size, its type, then what `body` writes.
fn boxed(out: &mut Vec<u8>, kind: [u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&kind);
    body(out);
    let size = u32::try_from(out.len() - start).unwrap_or(u32::MAX);
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// A full box: a box whose body starts with a version and flags.
fn full(
    out: &mut Vec<u8>,
    kind: [u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut Vec<u8>),
) {
    boxed(out, kind, |out| {
        out.extend_from_slice(&((u32::from(version) << 24) | flags).to_be_bytes());
        body(out);
    });
}

fn u16s(out: &mut Vec<u8>, values: &[u16]) {
    for v in values {
        out.extend_from_slice(&v.to_be_bytes());
    }
}

fn u32s(out: &mut Vec<u8>, values: &[u32]) {
    for v in values {
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// The identity matrix of `mvhd` and `tkhd`, in 16.16 and 2.30 fixed point.
const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// The initialisation segment: `ftyp` and `moov` with one H.264 track.
#[must_use]
pub fn init_segment(track: &Track) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    boxed(&mut out, *b"ftyp", |o| {
        o.extend_from_slice(b"isom");
        u32s(o, &[0x200]);
        o.extend_from_slice(b"isomiso6avc1mp41");
    });
    boxed(&mut out, *b"moov", |o| {
        full(o, *b"mvhd", 0, 0, |o| {
            // Created, modified, timescale (ms), duration (unknown: live).
            u32s(o, &[0, 0, 1000, 0]);
            u32s(o, &[0x0001_0000]); // rate 1.0
            u16s(o, &[0x0100, 0]); // volume 1.0, reserved
            u32s(o, &[0, 0]);
            u32s(o, &MATRIX);
            u32s(o, &[0; 6]);
            u32s(o, &[2]); // next track id
        });
        boxed(o, *b"trak", |o| {
            // Enabled, in the movie.
            full(o, *b"tkhd", 0, 3, |o| {
                u32s(o, &[0, 0, 1, 0, 0]); // created, modified, track 1, reserved, duration
                u32s(o, &[0, 0]);
                u16s(o, &[0, 0, 0, 0]); // layer, group, volume, reserved
                u32s(o, &MATRIX);
                u32s(o, &[track.width << 16, track.height << 16]);
            });
            boxed(o, *b"mdia", |o| {
                full(o, *b"mdhd", 0, 0, |o| {
                    u32s(o, &[0, 0, TIMESCALE, 0]);
                    u16s(o, &[0x55c4, 0]); // language "und"
                });
                full(o, *b"hdlr", 0, 0, |o| {
                    u32s(o, &[0]);
                    o.extend_from_slice(b"vide");
                    u32s(o, &[0, 0, 0]);
                    o.extend_from_slice(b"camfleet\0");
                });
                boxed(o, *b"minf", |o| {
                    full(o, *b"vmhd", 0, 1, |o| u16s(o, &[0, 0, 0, 0]));
                    boxed(o, *b"dinf", |o| {
                        full(o, *b"dref", 0, 0, |o| {
                            u32s(o, &[1]);
                            // The media is in this file.
                            full(o, *b"url ", 0, 1, |_| {});
                        });
                    });
                    boxed(o, *b"stbl", |o| {
                        full(o, *b"stsd", 0, 0, |o| {
                            u32s(o, &[1]);
                            avc1(o, track);
                        });
                        // No samples here: they come in fragments.
                        full(o, *b"stts", 0, 0, |o| u32s(o, &[0]));
                        full(o, *b"stsc", 0, 0, |o| u32s(o, &[0]));
                        full(o, *b"stsz", 0, 0, |o| u32s(o, &[0, 0]));
                        full(o, *b"stco", 0, 0, |o| u32s(o, &[0]));
                    });
                });
            });
        });
        boxed(o, *b"mvex", |o| {
            // Track 1, first sample description, no defaults.
            full(o, *b"trex", 0, 0, |o| u32s(o, &[1, 1, 0, 0, 0]));
        });
    });
    out
}

/// The H.264 sample entry with its decoder configuration (`avcC`).
fn avc1(o: &mut Vec<u8>, track: &Track) {
    boxed(o, *b"avc1", |o| {
        o.extend_from_slice(&[0; 6]);
        u16s(o, &[1]); // data reference
        u16s(o, &[0, 0]);
        u32s(o, &[0, 0, 0]);
        u16s(
            o,
            &[
                u16::try_from(track.width).unwrap_or(u16::MAX),
                u16::try_from(track.height).unwrap_or(u16::MAX),
            ],
        );
        u32s(o, &[0x0048_0000, 0x0048_0000, 0]); // 72 dpi, reserved
        u16s(o, &[1]); // one frame per sample
        o.extend_from_slice(&[0; 32]); // compressor name
        u16s(o, &[0x0018, 0xffff]); // depth 24, no colour table
        boxed(o, *b"avcC", |o| {
            let profile = |i: usize| track.sps.get(i).copied().unwrap_or(0);
            o.extend_from_slice(&[1, profile(1), profile(2), profile(3)]);
            // Lengths of four bytes; one SPS.
            o.extend_from_slice(&[0xff, 0xe1]);
            u16s(o, &[u16::try_from(track.sps.len()).unwrap_or(0)]);
            o.extend_from_slice(&track.sps);
            o.push(1);
            u16s(o, &[u16::try_from(track.pps.len()).unwrap_or(0)]);
            o.extend_from_slice(&track.pps);
        });
    });
}

/// The NAL units of an access unit as a sample holds them: each with its length in four
/// bytes, without the parameter sets and delimiters, which the initialisation segment and
/// the container replace.
fn sample_data(access_unit: &[u8], out: &mut Vec<u8>) {
    for unit in nal_units(access_unit) {
        if matches!(nal_type(unit), Some(nal::SPS | nal::PPS | nal::AUD)) {
            continue;
        }
        out.extend_from_slice(&u32::try_from(unit.len()).unwrap_or(0).to_be_bytes());
        out.extend_from_slice(unit);
    }
}

/// One fragment (`moof` and `mdat`) of `samples`, the first decoded at `decode_time`
/// ticks; `sequence` counts fragments from 1. A sample with no picture in it (an empty
/// buffer) is left out, and the time it stood for goes to the frame before it.
#[must_use]
pub fn fragment(sequence: u32, decode_time: u64, samples: &[Sample<'_>]) -> Vec<u8> {
    let mut decode_time = decode_time;
    let mut data = Vec::new();
    // Per sample kept: duration, size, keyframe.
    let mut kept: Vec<(u32, u32, bool)> = Vec::with_capacity(samples.len());
    for s in samples {
        let before = data.len();
        sample_data(s.access_unit, &mut data);
        let size = u32::try_from(data.len() - before).unwrap_or(0);
        match kept.last_mut() {
            _ if size > 0 => kept.push((s.duration, size, s.keyframe)),
            Some(previous) => previous.0 = previous.0.saturating_add(s.duration),
            None => decode_time += u64::from(s.duration),
        }
    }
    let mut out = Vec::with_capacity(data.len() + 128 + 12 * kept.len());
    let mut offset_at = 0;
    boxed(&mut out, *b"moof", |o| {
        full(o, *b"mfhd", 0, 0, |o| u32s(o, &[sequence]));
        boxed(o, *b"traf", |o| {
            // Track 1; offsets count from the start of the moof.
            full(o, *b"tfhd", 0, 0x02_0000, |o| u32s(o, &[1]));
            full(o, *b"tfdt", 1, 0, |o| {
                o.extend_from_slice(&decode_time.to_be_bytes());
            });
            // Data offset, then each sample's duration, size and flags.
            full(o, *b"trun", 0, 0x0701, |o| {
                u32s(o, &[u32::try_from(kept.len()).unwrap_or(0)]);
                offset_at = o.len();
                u32s(o, &[0]);
                for &(duration, size, keyframe) in &kept {
                    // A keyframe depends on no other frame; any other frame depends on
                    // others and is not a place to start.
                    let flags = if keyframe { 0x0200_0000 } else { 0x0101_0000 };
                    u32s(o, &[duration, size, flags]);
                }
            });
        });
    });
    // The samples start after the moof and the mdat's own header.
    let data_offset = u32::try_from(out.len() + 8).unwrap_or(0);
    out[offset_at..offset_at + 4].copy_from_slice(&data_offset.to_be_bytes());
    boxed(&mut out, *b"mdat", |o| o.extend_from_slice(&data));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The boxes at the top of `data`: (type, size).
    fn boxes(mut data: &[u8]) -> Vec<(String, usize)> {
        let mut found = Vec::new();
        while data.len() >= 8 {
            let size = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
            found.push((String::from_utf8_lossy(&data[4..8]).into_owned(), size));
            data = &data[size.min(data.len())..];
        }
        found
    }

    #[test]
    fn a_fragment_holds_the_frames_with_lengths_instead_of_start_codes() {
        let key = [
            0, 0, 0, 1, 0x67, 9, 9, 0, 0, 0, 1, 0x68, 8, 0, 0, 0, 1, 0x65, 1, 2, 3,
        ];
        let delta = [0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x41, 7];
        let samples = [
            Sample {
                access_unit: &key,
                duration: 3000,
                keyframe: true,
            },
            Sample {
                access_unit: &delta,
                duration: 3000,
                keyframe: false,
            },
        ];
        let f = fragment(1, 0, &samples);
        let top = boxes(&f);
        assert_eq!(
            top.iter().map(|b| b.0.as_str()).collect::<Vec<_>>(),
            ["moof", "mdat"]
        );
        assert_eq!(top[0].1 + top[1].1, f.len());
        let mdat = &f[top[0].1 + 8..];
        // The SPS, PPS and delimiter are gone; each slice has its length in front.
        assert_eq!(mdat, [0, 0, 0, 4, 0x65, 1, 2, 3, 0, 0, 0, 2, 0x41, 7]);
    }

    #[test]
    fn an_empty_buffer_is_left_out_and_its_time_kept() {
        const SLICE: [u8; 5] = [0, 0, 1, 0x41, 7];
        let sample = |access_unit: &'static [u8]| Sample {
            access_unit,
            duration: 3000,
            keyframe: false,
        };
        let f = fragment(
            1,
            90_000,
            &[sample(&[]), sample(&SLICE), sample(&[]), sample(&SLICE)],
        );
        let at = f.windows(4).position(|w| w == b"tfdt").unwrap();
        assert_eq!(
            &f[at + 8..at + 16],
            93_000u64.to_be_bytes(),
            "the first frame starts later"
        );
        let at = f.windows(4).position(|w| w == b"trun").unwrap();
        assert_eq!(&f[at + 8..at + 12], 2u32.to_be_bytes(), "two samples");
        // The first sample stands for itself and the empty one after it.
        assert_eq!(&f[at + 16..at + 20], 6000u32.to_be_bytes());
        assert_eq!(&f[at + 28..at + 32], 3000u32.to_be_bytes());
    }

    #[test]
    fn the_init_segment_is_ftyp_then_moov() {
        let track = Track {
            width: 320,
            height: 240,
            sps: vec![0x67, 0x42, 0xc0, 0x1f, 1],
            pps: vec![0x68, 2],
        };
        let init = init_segment(&track);
        let top = boxes(&init);
        assert_eq!(
            top.iter().map(|b| b.0.as_str()).collect::<Vec<_>>(),
            ["ftyp", "moov"]
        );
        assert_eq!(top[0].1 + top[1].1, init.len());
        let at = init.windows(4).position(|w| w == b"avcC").unwrap();
        assert_eq!(&init[at + 4..at + 8], [1, 0x42, 0xc0, 0x1f]);
    }
}
