//! `fingerprint`: a consistent hash of one or more fields into `target`, as Logstash's
//! fingerprint filter computes it — `method` SHA1 (default), SHA256, SHA384, SHA512,
//! MD5 (HMACs when `key` is set; hex, or `base64encode`), MURMUR3 (32-bit, seed 0, a
//! number), UUID (random), PUNCTUATION (the field with every word character removed)
//! and IPV4_NETWORK (the address masked to `key` prefix bits). `source` defaults to
//! `message`; with several sources each is fingerprinted in turn (the last wins)
//! unless `concatenate_sources` hashes `|name|value|name|value|` once;
//! `concatenate_all_fields` does the same over every field in name order. `target`
//! defaults to `[event][hash]` (ECS, Logstash 8's default) or `fingerprint` with
//! `ecs_compatibility => disabled`.

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha1::Digest;

use super::{Filter, Outcome};
use crate::pipeline::event::{parse_field_ref, Event};
use crate::pipeline::settings::{PluginError, Settings};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Method {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
    Md5,
    Murmur3,
    Uuid,
    Punctuation,
    Ipv4Network,
}

pub struct Fingerprint {
    sources: Vec<(String, Vec<String>)>,
    target: Vec<String>,
    method: Method,
    key: Option<String>,
    base64: bool,
    concatenate_sources: bool,
    concatenate_all_fields: bool,
    ipv4_prefix: u32,
}

impl Fingerprint {
    pub fn build(s: &mut Settings) -> Result<Fingerprint, PluginError> {
        let method = match s.string("method")?.as_deref().unwrap_or("SHA1") {
            "SHA1" => Method::Sha1,
            "SHA256" => Method::Sha256,
            "SHA384" => Method::Sha384,
            "SHA512" => Method::Sha512,
            "MD5" => Method::Md5,
            "MURMUR3" => Method::Murmur3,
            "UUID" => Method::Uuid,
            "PUNCTUATION" => Method::Punctuation,
            "IPV4_NETWORK" => Method::Ipv4Network,
            other => return Err(s.error(format!(
                "method \"{other}\" is not supported (SHA1, SHA256, SHA384, SHA512, MD5, MURMUR3, UUID, PUNCTUATION, IPV4_NETWORK)"
            ))),
        };
        let ecs = !matches!(s.string("ecs_compatibility")?.as_deref(), Some("disabled"));
        let mut sources: Vec<(String, Vec<String>)> = s
            .list("source")?
            .into_iter()
            .map(|f| {
                let p = parse_field_ref(&f);
                (f, p)
            })
            .collect();
        if sources.is_empty() {
            sources.push(("message".into(), vec!["message".into()]));
        }
        let key = s.string("key")?;
        let ipv4_prefix = if method == Method::Ipv4Network {
            key.as_deref()
                .and_then(|k| k.parse::<u32>().ok())
                .filter(|p| *p <= 32)
                .ok_or_else(|| {
                    s.error("IPV4_NETWORK needs key => the prefix length (0-32)".into())
                })?
        } else {
            0
        };
        let default_target = if ecs { "[event][hash]" } else { "fingerprint" };
        Ok(Fingerprint {
            sources,
            target: parse_field_ref(&s.string("target")?.unwrap_or_else(|| default_target.into())),
            method,
            key,
            base64: s.bool("base64encode")?.unwrap_or(false),
            concatenate_sources: s.bool("concatenate_sources")?.unwrap_or(false),
            concatenate_all_fields: s.bool("concatenate_all_fields")?.unwrap_or(false),
            ipv4_prefix,
        })
    }

    fn digest<D: Digest>(&self, data: &[u8]) -> Vec<u8> {
        D::digest(data).to_vec()
    }

    fn hmac<M: Mac + hmac::digest::KeyInit>(key: &str, data: &[u8]) -> Vec<u8> {
        let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key.as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }

    fn fingerprint(&self, text: &str) -> Option<Value> {
        let bytes = text.as_bytes();
        let raw = match (self.method, &self.key) {
            (Method::Murmur3, _) => return Some(Value::from(murmur3_32(bytes, 0))),
            (Method::Uuid, _) => return Some(Value::String(uuid::Uuid::new_v4().to_string())),
            (Method::Punctuation, _) => {
                let p: String = text
                    .chars()
                    .filter(|c| !(c.is_alphanumeric() || *c == '_'))
                    .collect();
                return Some(Value::String(p));
            }
            (Method::Ipv4Network, _) => {
                let ip: std::net::Ipv4Addr = text.trim().parse().ok()?;
                let mask = u32::MAX.checked_shl(32 - self.ipv4_prefix).unwrap_or(0);
                let net = std::net::Ipv4Addr::from(u32::from(ip) & mask);
                return Some(Value::String(net.to_string()));
            }
            (Method::Sha1, None) => self.digest::<sha1::Sha1>(bytes),
            (Method::Sha256, None) => self.digest::<sha2::Sha256>(bytes),
            (Method::Sha384, None) => self.digest::<sha2::Sha384>(bytes),
            (Method::Sha512, None) => self.digest::<sha2::Sha512>(bytes),
            (Method::Md5, None) => self.digest::<md5::Md5>(bytes),
            (Method::Sha1, Some(k)) => Self::hmac::<Hmac<sha1::Sha1>>(k, bytes),
            (Method::Sha256, Some(k)) => Self::hmac::<Hmac<sha2::Sha256>>(k, bytes),
            (Method::Sha384, Some(k)) => Self::hmac::<Hmac<sha2::Sha384>>(k, bytes),
            (Method::Sha512, Some(k)) => Self::hmac::<Hmac<sha2::Sha512>>(k, bytes),
            (Method::Md5, Some(k)) => Self::hmac::<Hmac<md5::Md5>>(k, bytes),
        };
        Some(Value::String(if self.base64 {
            base64::engine::general_purpose::STANDARD.encode(raw)
        } else {
            raw.iter().map(|b| format!("{b:02x}")).collect()
        }))
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Filter for Fingerprint {
    fn apply(&self, mut e: Event) -> Outcome {
        if self.concatenate_all_fields || self.concatenate_sources {
            let mut text = String::from("|");
            if self.concatenate_all_fields {
                for (k, v) in e.fields() {
                    if k != "@metadata" {
                        text.push_str(&format!("{k}|{}|", text_of(v)));
                    }
                }
            } else {
                for (name, path) in &self.sources {
                    let v = e.get(path).map(text_of).unwrap_or_default();
                    text.push_str(&format!("{name}|{v}|"));
                }
            }
            if let Some(fp) = self.fingerprint(&text) {
                e.set(&self.target, fp);
            }
        } else {
            for (_, path) in &self.sources {
                let Some(v) = e.get(path).map(text_of) else {
                    continue;
                };
                if let Some(fp) = self.fingerprint(&v) {
                    e.set(&self.target, fp);
                }
            }
        }
        Outcome::Done(e)
    }
}

/// MurmurHash3 x86_32, as Logstash's MURMUR3 method computes it. Written here because
/// it is twenty lines and the crates that offer it bring a hasher trait we do not need.
fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let k = u32::from_le_bytes([c[0], c[1], c[2], c[3]])
            .wrapping_mul(C1)
            .rotate_left(15)
            .wrapping_mul(C2);
        h = (h ^ k)
            .rotate_left(13)
            .wrapping_mul(5)
            .wrapping_add(0xe654_6b64);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut k = 0u32;
        for (i, b) in tail.iter().enumerate() {
            k |= u32::from(*b) << (8 * i);
        }
        h ^= k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    }
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_matches_the_reference_vectors() {
        assert_eq!(murmur3_32(b"", 0), 0);
        assert_eq!(murmur3_32(b"", 1), 0x514E_28B7);
        assert_eq!(murmur3_32(b"Hello, world!", 1234), 0xFAF6_CDB3);
        assert_eq!(
            murmur3_32(b"The quick brown fox jumps over the lazy dog", 0),
            0x2E4F_F723
        );
    }
}
