//! SPDY/3.1 framing, the transport of Kubernetes' port-forward protocol (upstream uses
//! moby/spdystream on both ends): frame encoding and decoding, and the header blocks, which
//! travel compressed in one zlib stream per direction primed with the SPDY dictionary.
//!
//! Only what a server of `portforward.k8s.io` needs is here: it reads every frame type (so the
//! zlib stream of HEADERS frames stays in step) and writes SYN_REPLY, DATA, RST_STREAM, PING and
//! GOAWAY. Flow control is not spoken, as spdystream does not speak it either.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The SPDY/3 header compression dictionary (the draft-3 specification's, 1423 bytes).
pub const DICTIONARY: &[u8] = include_bytes!("spdy_dictionary.bin");

/// The largest frame body accepted; spdystream writes data in 32 KiB pieces.
pub const MAX_FRAME: usize = 1 << 20;
/// The largest decompressed header block accepted.
const MAX_HEADER_BLOCK: usize = 64 << 10;

const VERSION: u16 = 3;
const TYPE_SYN_STREAM: u16 = 1;
const TYPE_SYN_REPLY: u16 = 2;
const TYPE_RST_STREAM: u16 = 3;
const TYPE_SETTINGS: u16 = 4;
const TYPE_PING: u16 = 6;
const TYPE_GOAWAY: u16 = 7;
const TYPE_HEADERS: u16 = 8;
const TYPE_WINDOW_UPDATE: u16 = 9;
/// FLAG_FIN on data and stream frames: the sender's last frame on that stream.
const FLAG_FIN: u8 = 0x01;

/// RST_STREAM status: the stream is not known (or not valid here).
pub const RST_PROTOCOL_ERROR: u32 = 1;
/// RST_STREAM status: the receiver refuses the stream.
pub const RST_REFUSED_STREAM: u32 = 3;

/// Header name/value pairs in wire order, names lowercase.
pub type Headers = Vec<(String, String)>;

/// A SPDY failure.
#[derive(Debug, thiserror::Error)]
pub enum SpdyError {
    #[error("spdy read: {0}")]
    Io(#[from] std::io::Error),
    #[error("spdy frame of version {0} is not spdy/3")]
    Version(u16),
    #[error("spdy frame of {0} bytes is larger than {MAX_FRAME}")]
    TooLarge(usize),
    #[error("spdy {what} frame is malformed")]
    Malformed { what: &'static str },
    #[error("spdy header block: {0}")]
    HeaderBlock(String),
}

/// One frame, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    SynReply {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Settings,
    Ping {
        id: u32,
    },
    GoAway {
        last_good_stream_id: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        headers: Headers,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        fin: bool,
        data: Vec<u8>,
    },
    /// A control frame of a type this module does not know; skipped, as the spec asks.
    Unknown {
        frame_type: u16,
    },
}

/// One direction's header compression state (compressing or decompressing).
pub struct HeaderCodec {
    compress: Compress,
    decompress: Decompress,
    dictionary_set: bool,
}

impl Default for HeaderCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl HeaderCodec {
    /// A fresh codec for a new connection.
    pub fn new() -> Self {
        let mut compress = Compress::new(Compression::best(), true);
        compress
            .set_dictionary(DICTIONARY)
            .expect("a fresh deflate stream takes a dictionary");
        Self {
            compress,
            decompress: Decompress::new(true),
            dictionary_set: false,
        }
    }

    /// Serializes and compresses `headers` (the next block of this connection's stream).
    pub fn encode(&mut self, headers: &[(String, String)]) -> Vec<u8> {
        let mut raw = Vec::new();
        raw.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        for (name, value) in headers {
            raw.extend_from_slice(&(name.len() as u32).to_be_bytes());
            raw.extend_from_slice(name.to_ascii_lowercase().as_bytes());
            raw.extend_from_slice(&(value.len() as u32).to_be_bytes());
            raw.extend_from_slice(value.as_bytes());
        }
        let mut out = Vec::with_capacity(raw.len() + 64);
        let mut input: &[u8] = &raw;
        loop {
            let before = self.compress.total_in();
            self.compress
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .expect("deflate into a vector cannot fail");
            input = &input[(self.compress.total_in() - before) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                return out;
            }
            out.reserve(256);
        }
    }

    /// Decompresses and parses one header block.
    pub fn decode(&mut self, block: &[u8]) -> Result<Headers, SpdyError> {
        let bad = |m: &str| SpdyError::HeaderBlock(m.to_string());
        let mut raw = Vec::with_capacity(block.len() * 4 + 64);
        let mut input = block;
        loop {
            let before = self.decompress.total_in();
            let result = self
                .decompress
                .decompress_vec(input, &mut raw, FlushDecompress::Sync);
            input = &input[(self.decompress.total_in() - before) as usize..];
            match result {
                Ok(Status::StreamEnd) => return Err(bad("the zlib stream ended")),
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() && !self.dictionary_set => {
                    self.decompress
                        .set_dictionary(DICTIONARY)
                        .map_err(|e| SpdyError::HeaderBlock(format!("dictionary: {e}")))?;
                    self.dictionary_set = true;
                    continue;
                }
                Err(e) => return Err(SpdyError::HeaderBlock(e.to_string())),
            }
            if raw.len() > MAX_HEADER_BLOCK {
                return Err(bad("the header block is too large"));
            }
            if input.is_empty() && raw.len() < raw.capacity() {
                break;
            }
            raw.reserve(1024);
        }
        parse_header_block(&raw)
    }
}

fn parse_header_block(raw: &[u8]) -> Result<Headers, SpdyError> {
    let bad = || SpdyError::HeaderBlock("the name/value block is truncated".into());
    let mut at = 0usize;
    let take_u32 = |at: &mut usize| -> Result<usize, SpdyError> {
        let bytes = raw.get(*at..*at + 4).ok_or_else(bad)?;
        *at += 4;
        Ok(u32::from_be_bytes(bytes.try_into().expect("four bytes")) as usize)
    };
    let count = take_u32(&mut at)?;
    let mut headers = Vec::new();
    for _ in 0..count {
        let len = take_u32(&mut at)?;
        let name = raw.get(at..at + len).ok_or_else(bad)?;
        at += len;
        let len = take_u32(&mut at)?;
        let value = raw.get(at..at + len).ok_or_else(bad)?;
        at += len;
        headers.push((
            String::from_utf8_lossy(name).to_ascii_lowercase(),
            String::from_utf8_lossy(value).into_owned(),
        ));
    }
    Ok(headers)
}

/// The value of header `name` (lowercase) in `headers`.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn u32_at(body: &[u8], at: usize) -> Option<u32> {
    body.get(at..at + 4)
        .map(|b| u32::from_be_bytes(b.try_into().expect("four bytes")))
}

/// Reads the next frame; `None` at a clean end of the stream between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    codec: &mut HeaderCodec,
) -> Result<Option<Frame>, SpdyError> {
    let mut head = [0u8; 8];
    match r.read_exact(&mut head[..1]).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    r.read_exact(&mut head[1..]).await?;
    let flags = head[4];
    let len = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
    if len > MAX_FRAME {
        return Err(SpdyError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    let first = u32::from_be_bytes(head[..4].try_into().expect("four bytes"));
    if first & 0x8000_0000 == 0 {
        return Ok(Some(Frame::Data {
            stream_id: first & 0x7fff_ffff,
            fin: flags & FLAG_FIN != 0,
            data: body,
        }));
    }
    let version = ((first >> 16) & 0x7fff) as u16;
    if version != VERSION {
        return Err(SpdyError::Version(version));
    }
    let frame_type = (first & 0xffff) as u16;
    let fin = flags & FLAG_FIN != 0;
    let malformed = |what| SpdyError::Malformed { what };
    let frame = match frame_type {
        TYPE_SYN_STREAM => {
            let stream_id = u32_at(&body, 0).ok_or(malformed("SYN_STREAM"))? & 0x7fff_ffff;
            let block = body.get(10..).ok_or(malformed("SYN_STREAM"))?;
            Frame::SynStream {
                stream_id,
                fin,
                headers: codec.decode(block)?,
            }
        }
        TYPE_SYN_REPLY => {
            let stream_id = u32_at(&body, 0).ok_or(malformed("SYN_REPLY"))? & 0x7fff_ffff;
            Frame::SynReply {
                stream_id,
                fin,
                headers: codec.decode(&body[4..])?,
            }
        }
        TYPE_RST_STREAM => Frame::RstStream {
            stream_id: u32_at(&body, 0).ok_or(malformed("RST_STREAM"))? & 0x7fff_ffff,
            status: u32_at(&body, 4).ok_or(malformed("RST_STREAM"))?,
        },
        TYPE_SETTINGS => Frame::Settings,
        TYPE_PING => Frame::Ping {
            id: u32_at(&body, 0).ok_or(malformed("PING"))?,
        },
        TYPE_GOAWAY => Frame::GoAway {
            last_good_stream_id: u32_at(&body, 0).ok_or(malformed("GOAWAY"))? & 0x7fff_ffff,
            status: u32_at(&body, 4).unwrap_or(0),
        },
        TYPE_HEADERS => {
            let stream_id = u32_at(&body, 0).ok_or(malformed("HEADERS"))? & 0x7fff_ffff;
            Frame::Headers {
                stream_id,
                headers: codec.decode(&body[4..])?,
            }
        }
        TYPE_WINDOW_UPDATE => Frame::WindowUpdate {
            stream_id: u32_at(&body, 0).ok_or(malformed("WINDOW_UPDATE"))? & 0x7fff_ffff,
            delta: u32_at(&body, 4).ok_or(malformed("WINDOW_UPDATE"))? & 0x7fff_ffff,
        },
        other => Frame::Unknown { frame_type: other },
    };
    Ok(Some(frame))
}

fn control(frame_type: u16, flags: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + body.len());
    out.extend_from_slice(&(0x8000u16 | VERSION).to_be_bytes());
    out.extend_from_slice(&frame_type.to_be_bytes());
    out.push(flags);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(body);
    out
}

/// Encodes `frame` (header blocks through `codec`, the sending direction's state).
pub fn encode_frame(frame: &Frame, codec: &mut HeaderCodec) -> Vec<u8> {
    let fin_flag = |fin: bool| if fin { FLAG_FIN } else { 0 };
    match frame {
        Frame::Data {
            stream_id,
            fin,
            data,
        } => {
            let mut out = Vec::with_capacity(8 + data.len());
            out.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
            out.push(fin_flag(*fin));
            out.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
            out.extend_from_slice(data);
            out
        }
        Frame::SynStream {
            stream_id,
            fin,
            headers,
        } => {
            let mut body = Vec::new();
            body.extend_from_slice(&stream_id.to_be_bytes());
            body.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
            body.extend_from_slice(&codec.encode(headers));
            control(TYPE_SYN_STREAM, fin_flag(*fin), &body)
        }
        Frame::SynReply {
            stream_id,
            fin,
            headers,
        } => {
            let mut body = stream_id.to_be_bytes().to_vec();
            body.extend_from_slice(&codec.encode(headers));
            control(TYPE_SYN_REPLY, fin_flag(*fin), &body)
        }
        Frame::Headers { stream_id, headers } => {
            let mut body = stream_id.to_be_bytes().to_vec();
            body.extend_from_slice(&codec.encode(headers));
            control(TYPE_HEADERS, 0, &body)
        }
        Frame::RstStream { stream_id, status } => {
            let mut body = stream_id.to_be_bytes().to_vec();
            body.extend_from_slice(&status.to_be_bytes());
            control(TYPE_RST_STREAM, 0, &body)
        }
        Frame::Settings => control(TYPE_SETTINGS, 0, &0u32.to_be_bytes()),
        Frame::Ping { id } => control(TYPE_PING, 0, &id.to_be_bytes()),
        Frame::GoAway {
            last_good_stream_id,
            status,
        } => {
            let mut body = last_good_stream_id.to_be_bytes().to_vec();
            body.extend_from_slice(&status.to_be_bytes());
            control(TYPE_GOAWAY, 0, &body)
        }
        Frame::WindowUpdate { stream_id, delta } => {
            let mut body = stream_id.to_be_bytes().to_vec();
            body.extend_from_slice(&delta.to_be_bytes());
            control(TYPE_WINDOW_UPDATE, 0, &body)
        }
        Frame::Unknown { frame_type } => control(*frame_type, 0, &[]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_dictionary_is_the_specifications() {
        assert_eq!(DICTIONARY.len(), 1423);
        assert!(DICTIONARY.starts_with(b"\x00\x00\x00\x07options"));
        assert!(DICTIONARY.ends_with(b"utf-,*,enq=0."));
    }

    #[tokio::test]
    async fn frames_round_trip_with_one_zlib_stream_per_direction() {
        let mut tx = HeaderCodec::new();
        let mut rx = HeaderCodec::new();
        let frames = vec![
            Frame::SynStream {
                stream_id: 1,
                fin: false,
                headers: h(&[
                    ("streamtype", "error"),
                    ("port", "8080"),
                    ("requestid", "0"),
                ]),
            },
            Frame::SynStream {
                stream_id: 3,
                fin: false,
                headers: h(&[("streamtype", "data"), ("port", "8080"), ("requestid", "0")]),
            },
            Frame::Data {
                stream_id: 3,
                fin: false,
                data: b"GET / HTTP/1.0\r\n\r\n".to_vec(),
            },
            Frame::Data {
                stream_id: 1,
                fin: true,
                data: vec![],
            },
            Frame::SynReply {
                stream_id: 5,
                fin: false,
                headers: vec![],
            },
            Frame::Ping { id: 7 },
            Frame::RstStream {
                stream_id: 3,
                status: 5,
            },
            Frame::WindowUpdate {
                stream_id: 3,
                delta: 65536,
            },
            Frame::GoAway {
                last_good_stream_id: 3,
                status: 0,
            },
        ];
        let mut wire = Vec::new();
        for f in &frames {
            wire.extend(encode_frame(f, &mut tx));
        }
        let mut r: &[u8] = &wire;
        let mut got = Vec::new();
        while let Some(f) = read_frame(&mut r, &mut rx).await.unwrap() {
            got.push(f);
        }
        assert_eq!(got, frames);
    }

    #[test]
    fn header_blocks_are_primed_with_the_dictionary() {
        let mut codec = HeaderCodec::new();
        let block = codec.encode(&h(&[("streamtype", "data")]));
        // zlib header with FDICT set and the dictionary's adler32 as its id
        assert_eq!(block[1] & 0x20, 0x20);
        assert_eq!(&block[2..6], &[0xe3, 0xc6, 0xa7, 0xc2]);
    }

    #[tokio::test]
    async fn hostile_frames_are_refused() {
        let mut codec = HeaderCodec::new();
        // a data frame claiming 16 MiB
        let mut r: &[u8] = &[0, 0, 0, 1, 0, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_frame(&mut r, &mut codec).await,
            Err(SpdyError::TooLarge(_))
        ));
        // SPDY/2
        let mut r: &[u8] = &[0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1];
        assert!(matches!(
            read_frame(&mut r, &mut codec).await,
            Err(SpdyError::Version(2))
        ));
        // a SYN_STREAM whose header block is not zlib
        let mut bad = control(TYPE_SYN_STREAM, 0, &[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 2, 3]);
        let mut r: &[u8] = &bad;
        assert!(matches!(
            read_frame(&mut r, &mut HeaderCodec::new()).await,
            Err(SpdyError::HeaderBlock(_))
        ));
        // a truncated frame
        bad.truncate(10);
        let mut r: &[u8] = &bad;
        assert!(read_frame(&mut r, &mut HeaderCodec::new()).await.is_err());
        // a name/value block whose count lies
        assert!(parse_header_block(&[0, 0, 0, 2, 0, 0, 0, 1, b'a', 0, 0, 0, 0]).is_err());
    }
}
