//! Frame Streams (the transport of dnstap, farsightsecurity/fstrm): the bidirectional
//! handshake of a writer over a stream socket and the frames it sends.
//!
//! A data frame is its length (32 bits, big endian, never 0) and its bytes. A control frame
//! starts with a 0 "length" (the escape), then its own length, its type and its fields; the
//! only field is the content type. The writer sends READY with the content type, the reader
//! answers ACCEPT, the writer sends START with the content type and then data frames, and
//! STOP when it is done.

use std::io::{self, Read, Write};

/// The content type of dnstap frames.
pub(crate) const CONTENT_TYPE: &[u8] = b"protobuf:dnstap.Dnstap";

/// Control frame types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Control {
    Accept = 1,
    Start = 2,
    Stop = 3,
    Ready = 4,
}

/// The control field carrying a content type.
const FIELD_CONTENT_TYPE: u32 = 1;
/// The largest control frame a reader may answer with.
const MAX_CONTROL: u32 = 512;

/// The bytes of a control frame of `kind`, with the dnstap content type where it belongs.
pub(crate) fn control(kind: Control) -> Vec<u8> {
    let mut body = (kind as u32).to_be_bytes().to_vec();
    if matches!(kind, Control::Ready | Control::Start | Control::Accept) {
        body.extend_from_slice(&FIELD_CONTENT_TYPE.to_be_bytes());
        body.extend_from_slice(&(CONTENT_TYPE.len() as u32).to_be_bytes());
        body.extend_from_slice(CONTENT_TYPE);
    }
    let mut frame = 0u32.to_be_bytes().to_vec();
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    frame
}

/// Appends a data frame holding `payload` to `out`.
pub(crate) fn data(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
}

/// The writer's side of the handshake on a fresh connection: READY, the reader's ACCEPT
/// (which must offer the dnstap content type), START.
pub(crate) fn handshake(stream: &mut (impl Read + Write)) -> io::Result<()> {
    stream.write_all(&control(Control::Ready))?;
    stream.flush()?;
    let accept = read_control(stream)?;
    if !accepts_dnstap(&accept) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the reader did not ACCEPT protobuf:dnstap.Dnstap",
        ));
    }
    stream.write_all(&control(Control::Start))?;
    stream.flush()
}

/// Reads one control frame; returns its body (type and fields).
fn read_control(stream: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut word = [0u8; 4];
    stream.read_exact(&mut word)?;
    if word != [0; 4] {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "expected a control frame",
        ));
    }
    stream.read_exact(&mut word)?;
    let length = u32::from_be_bytes(word);
    if !(4..=MAX_CONTROL).contains(&length) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("control frame of {length} bytes"),
        ));
    }
    let mut body = vec![0; length as usize];
    stream.read_exact(&mut body)?;
    Ok(body)
}

/// Whether a control frame body is an ACCEPT that offers the dnstap content type (or no
/// content type at all, which accepts any).
fn accepts_dnstap(body: &[u8]) -> bool {
    let word = |i: usize| {
        body.get(i..i + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    if word(0) != Some(Control::Accept as u32) {
        return false;
    }
    let mut at = 4;
    let mut offered = false;
    while let (Some(field), Some(length)) = (word(at), word(at + 4)) {
        let value = body.get(at + 8..at + 8 + length as usize);
        if field == FIELD_CONTENT_TYPE {
            offered = true;
            if value == Some(CONTENT_TYPE) {
                return true;
            }
        }
        at += 8 + length as usize;
    }
    !offered
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream that reads from a script and records what is written.
    struct Scripted {
        input: io::Cursor<Vec<u8>>,
        written: Vec<u8>,
    }

    impl Read for Scripted {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Scripted {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.written.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn scripted(input: Vec<u8>) -> Scripted {
        Scripted {
            input: io::Cursor::new(input),
            written: Vec::new(),
        }
    }

    #[test]
    fn ready_names_the_content_type_and_accept_leads_to_start() {
        let ready = control(Control::Ready);
        assert_eq!(&ready[..12], &[0, 0, 0, 0, 0, 0, 0, 34, 0, 0, 0, 4]);
        assert_eq!(&ready[12..20], &[0, 0, 0, 1, 0, 0, 0, 22]);
        assert_eq!(&ready[20..], CONTENT_TYPE);
        let mut stream = scripted(control(Control::Accept));
        handshake(&mut stream).unwrap();
        let mut expected = control(Control::Ready);
        expected.extend(control(Control::Start));
        assert_eq!(stream.written, expected);
        assert_eq!(control(Control::Stop), [0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 3]);
    }

    #[test]
    fn a_reader_that_wants_another_content_type_or_talks_nonsense_is_refused() {
        let mut other = vec![0, 0, 0, 0, 0, 0, 0, 15, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 3];
        other.extend(b"foo");
        assert!(handshake(&mut scripted(other)).is_err());
        let bare_accept = vec![0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 1];
        assert!(handshake(&mut scripted(bare_accept)).is_ok(), "accepts any");
        assert!(handshake(&mut scripted(vec![0, 0, 0, 9, 1, 2])).is_err());
        assert!(handshake(&mut scripted(vec![0, 0, 0, 0, 0xff, 0, 0, 0])).is_err());
        assert!(handshake(&mut scripted(Vec::new())).is_err(), "closed");
    }

    #[test]
    fn data_frames_are_length_prefixed() {
        let mut out = Vec::new();
        data(&mut out, b"abc");
        assert_eq!(out, [0, 0, 0, 3, b'a', b'b', b'c']);
    }
}
