//! What an adapter call may do on the network, decided by the host: the
//! plugin-neutral policy (allowed hosts, private networks, the secrets the
//! host injects and where they may go, sizes and deadlines). The wasm
//! runtime enforces it (`runtime::outbound`).

use std::net::IpAddr;
use std::time::Duration;

use http::header::{HeaderName, HeaderValue};

/// What one adapter call may do on the network.
#[derive(Debug, Clone)]
pub struct OutboundPolicy {
    /// Host names (lower case) or `*.suffix` patterns the call may reach.
    pub allowed_hosts: Vec<String>,
    /// Reach private, loopback and link-local addresses.
    pub allow_private: bool,
    /// Headers the host adds to requests toward `credential_hosts` (secret values).
    pub inject: Vec<(HeaderName, HeaderValue)>,
    /// Where the secrets were entered for, the only targets that receive
    /// `inject`: `scheme://host:port` (exact), or a bare host name (any
    /// scheme and port), lower case.
    pub credential_hosts: Vec<String>,
    /// Deadline of one request, connect to last body byte.
    pub request_timeout: Duration,
    /// Requests one call may make.
    pub max_requests: u32,
    /// Largest request body.
    pub max_request_bytes: u64,
    /// Largest response body.
    pub max_response_bytes: u64,
}

impl OutboundPolicy {
    /// A policy that refuses every request (converters, extractors).
    pub fn deny_all() -> Self {
        Self {
            allowed_hosts: Vec::new(),
            allow_private: false,
            inject: Vec::new(),
            credential_hosts: Vec::new(),
            request_timeout: Duration::from_secs(30),
            max_requests: 0,
            max_request_bytes: 0,
            max_response_bytes: 0,
        }
    }

    /// Whether `host` (lower case, no port) is on the allow-list.
    pub fn allows_host(&self, host: &str) -> bool {
        self.allowed_hosts
            .iter()
            .any(|pattern| host_matches(pattern, host))
    }
}

/// Whether `host` matches `pattern`: equal, or `*.example.com` for any
/// subdomain of example.com, or `*` for any host.
pub fn host_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim().to_ascii_lowercase();
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if pattern == "*" {
        return true;
    }
    match pattern.strip_prefix("*.") {
        Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}")),
        None => pattern == host,
    }
}

/// Whether `ip` is a public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                // Carrier-grade NAT 100.64/10 and benchmarking 198.18/15.
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            // Addresses that carry an IPv4 address inside: judge that one.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            // IPv4-translated ::ffff:0:0/96 (SIIT) carries one in its last 32 bits.
            if s[..4].iter().all(|&x| x == 0) && s[4] == 0xffff && s[5] == 0 {
                let v4 = std::net::Ipv4Addr::new(
                    (s[6] >> 8) as u8,
                    s[6] as u8,
                    (s[7] >> 8) as u8,
                    s[7] as u8,
                );
                return is_public(IpAddr::V4(v4));
            }
            // 6to4 2002::/16 routes to the IPv4 address in bits 16..48.
            if s[0] == 0x2002 {
                let v4 = std::net::Ipv4Addr::new(
                    (s[1] >> 8) as u8,
                    s[1] as u8,
                    (s[2] >> 8) as u8,
                    s[2] as u8,
                );
                return is_public(IpAddr::V4(v4));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // IPv4-compatible ::/96 (deprecated; `::127.0.0.1` reaches loopback on some stacks).
                || s[..6].iter().all(|&x| x == 0)
                // Unique local fc00::/7, link-local fe80::/10, site-local fec0::/10,
                // documentation 2001:db8::/32, discard 100::/64.
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || (s[0] == 0x0100 && s[1..4].iter().all(|&x| x == 0))
                // Teredo 2001::/32 tunnels to an IPv4 address it hides.
                || (s[0] == 0x2001 && s[1] == 0)
                // NAT64 64:ff9b::/96 and local-use 64:ff9b:1::/48 can reach
                // any IPv4 address, private ones too.
                || (s[0] == 0x64 && s[1] == 0xff9b))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns() {
        assert!(host_matches("api.openai.com", "API.openai.com"));
        assert!(!host_matches("api.openai.com", "evil-api.openai.com"));
        assert!(host_matches("*.openai.azure.com", "x.openai.azure.com"));
        assert!(!host_matches("*.openai.azure.com", "openai.azure.com"));
        assert!(!host_matches("*.openai.azure.com", "xopenai.azure.com"));
        assert!(host_matches("*", "anything.example"));
    }

    #[test]
    fn public_and_private_addresses() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            "::127.0.0.1",
            "::a00:1",
            "2002:7f00:1::",
            "::ffff:0:7f00:1",
            "::ffff:0:a00:1",
            "2002:a00:1::1",
            "2001:0:4136:e378::1",
            "fec0::1",
            "100::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "2002:808:808::1",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }
}
