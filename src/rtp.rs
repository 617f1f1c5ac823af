//! RTP packets of H.264 access units (RFC 3550, with the payload format of RFC 6184), and
//! the SDP that describes them, as an RTSP server hands them to recorders and players.
//!
//! The pictures are not touched: a NAL unit that fits a packet travels whole, a larger one
//! in fragmentation units (FU-A), in order. Plain code with no I/O.

use std::fmt::Write as _;

use base64::Engine as _;

use crate::camera::h264::{nal, nal_type, nal_units, Sps};

/// The RTP clock rate of H.264 video.
pub const CLOCK_RATE: u32 = 90_000;
/// The dynamic payload type camfleet gives H.264.
pub const PAYLOAD_TYPE: u8 = 96;
/// The largest RTP payload: an Ethernet frame's 1500 bytes less IP, UDP and RTP headers,
/// with room to spare for tunnels.
pub const MAX_PAYLOAD: usize = 1400;

const RTP_HEADER: usize = 12;
/// The NAL unit type of a fragmentation unit, mode A.
const FU_A: u8 = 28;

/// Turns access units into RTP packets of one stream (one SSRC, one sequence).
#[derive(Debug)]
pub struct Packetizer {
    ssrc: u32,
    sequence: u16,
}

impl Packetizer {
    /// A stream with this SSRC whose first packet has sequence number `sequence`.
    #[must_use]
    pub fn new(ssrc: u32, sequence: u16) -> Packetizer {
        Packetizer { ssrc, sequence }
    }

    /// The sequence number the next packet gets.
    #[must_use]
    pub fn next_sequence(&self) -> u16 {
        self.sequence
    }

    /// The packets of one access unit, all with `timestamp` (in [`CLOCK_RATE`] ticks), the
    /// marker bit on the last. Access unit delimiters are left out (RFC 6184, 5.1).
    pub fn packetize(&mut self, access_unit: &[u8], timestamp: u32) -> Vec<Vec<u8>> {
        let units: Vec<&[u8]> = nal_units(access_unit)
            .filter(|u| nal_type(u) != Some(nal::AUD))
            .collect();
        let mut packets = Vec::new();
        for (i, unit) in units.iter().enumerate() {
            let last_unit = i + 1 == units.len();
            if unit.len() <= MAX_PAYLOAD {
                packets.push(self.packet(timestamp, last_unit, &[unit]));
                continue;
            }
            // Fragments: the indicator keeps the unit's NRI bits, the header its type;
            // the unit's own header byte is not repeated.
            let (header, body) = (unit[0], &unit[1..]);
            let indicator = (header & 0xe0) | FU_A;
            let chunks: Vec<&[u8]> = body.chunks(MAX_PAYLOAD - 2).collect();
            for (j, chunk) in chunks.iter().enumerate() {
                let (start, end) = (j == 0, j + 1 == chunks.len());
                let fu_header = (u8::from(start) << 7) | (u8::from(end) << 6) | (header & 0x1f);
                packets.push(self.packet(
                    timestamp,
                    last_unit && end,
                    &[&[indicator, fu_header], chunk],
                ));
            }
        }
        packets
    }

    fn packet(&mut self, timestamp: u32, marker: bool, payload: &[&[u8]]) -> Vec<u8> {
        let len: usize = payload.iter().map(|p| p.len()).sum();
        let mut p = Vec::with_capacity(RTP_HEADER + len);
        // Version 2, no padding, no extension, no CSRC.
        p.push(0x80);
        p.push((u8::from(marker) << 7) | PAYLOAD_TYPE);
        p.extend_from_slice(&self.sequence.to_be_bytes());
        p.extend_from_slice(&timestamp.to_be_bytes());
        p.extend_from_slice(&self.ssrc.to_be_bytes());
        for part in payload {
            p.extend_from_slice(part);
        }
        self.sequence = self.sequence.wrapping_add(1);
        p
    }
}

/// The media description of an H.264 stream (RFC 6184, 8.2.1), for an SDP: `port` is the
/// media's port (0 where RTSP sets up the transport), `control` the stream's RTSP control
/// URL, if any.
#[must_use]
pub fn sdp_media(sps: &[u8], pps: &[u8], port: u16, control: Option<&str>) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let profile_level = match Sps::parse(sps) {
        Ok(s) => format!(
            ";profile-level-id={:02X}{:02X}{:02X}",
            s.profile_idc, s.constraints, s.level_idc
        ),
        Err(_) => String::new(),
    };
    let mut media = format!(
        "m=video {port} RTP/AVP {PAYLOAD_TYPE}\r\n\
         a=rtpmap:{PAYLOAD_TYPE} H264/{CLOCK_RATE}\r\n\
         a=fmtp:{PAYLOAD_TYPE} packetization-mode=1{profile_level};sprop-parameter-sets={},{}\r\n",
        b64.encode(sps),
        b64.encode(pps)
    );
    if let Some(control) = control {
        let _ = write!(media, "a=control:{control}\r\n");
    }
    media
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(p: &[u8]) -> (bool, u16, u32) {
        (
            p[1] & 0x80 != 0,
            u16::from_be_bytes([p[2], p[3]]),
            u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
        )
    }

    #[test]
    fn small_units_go_whole_and_the_last_packet_is_marked() {
        let au = [
            0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 1, 0x65, 4,
        ];
        let mut p = Packetizer::new(7, 65535);
        let packets = p.packetize(&au, 3000);
        assert_eq!(packets.len(), 3, "the delimiter is left out");
        assert_eq!(&packets[0][12..], [0x67, 1, 2]);
        assert_eq!(&packets[2][12..], [0x65, 4]);
        assert_eq!(header(&packets[0]), (false, 65535, 3000));
        assert_eq!(header(&packets[2]), (true, 1, 3000));
        assert_eq!(p.next_sequence(), 2);
        assert_eq!(packets[0][1] & 0x7f, PAYLOAD_TYPE);
        assert_eq!(&packets[0][8..12], 7u32.to_be_bytes());
    }

    #[test]
    fn the_sdp_names_the_codec_its_level_and_parameter_sets() {
        // A baseline 320x240 SPS (profile 66, constraints 0xc0, level 1.3).
        let sps = [
            0x67, 0x42, 0xc0, 0x0d, 0x8c, 0x8d, 0x41, 0x41, 0xf2, 0x01, 0xe1, 0x10, 0x8d, 0x40,
        ];
        let media = sdp_media(&sps, &[0x68, 0xce, 0x3c, 0x80], 0, Some("trackID=1"));
        assert!(media.starts_with("m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"));
        assert!(
            media.contains("packetization-mode=1;profile-level-id=42C00D;"),
            "{media}"
        );
        assert!(
            media.contains("sprop-parameter-sets=Z0LADYyNQUHyAeEQjUA=,aM48gA=="),
            "{media}"
        );
        assert!(media.ends_with("a=control:trackID=1\r\n"));
    }

    #[test]
    fn a_large_unit_is_split_into_fragments_that_rebuild_it() {
        let mut unit = vec![0x65];
        unit.extend((0..4000u32).map(|i| (i % 251) as u8 | 1));
        let mut au = vec![0, 0, 0, 1];
        au.extend(&unit);
        let packets = Packetizer::new(1, 0).packetize(&au, 0);
        assert_eq!(packets.len(), 3);
        let mut rebuilt = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            assert!(p.len() <= RTP_HEADER + MAX_PAYLOAD);
            let (indicator, fu) = (p[12], p[13]);
            assert_eq!(indicator & 0x1f, FU_A);
            assert_eq!(indicator & 0xe0, 0x60);
            assert_eq!(fu & 0x1f, 5);
            assert_eq!(fu & 0x80 != 0, i == 0, "start bit");
            assert_eq!(fu & 0x40 != 0, i == 2, "end bit");
            assert_eq!(header(p).0, i == 2, "marker");
            if i == 0 {
                rebuilt.push((indicator & 0xe0) | (fu & 0x1f));
            }
            rebuilt.extend_from_slice(&p[14..]);
        }
        assert_eq!(rebuilt, unit);
    }
}
