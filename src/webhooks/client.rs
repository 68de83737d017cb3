//! Delivering a webhook over HTTP without becoming a proxy into our own network.
//!
//! A webhook URL is chosen by whoever administers a workspace, so the server must not
//! let it reach what only the server can reach (cloud metadata at 169.254.169.254, a
//! database on 10.0.0.5, an admin port on localhost). Three checks close that door:
//!
//! - [`check_url`] refuses other schemes, credentials, and literal private IPs (a
//!   literal IP is connected to directly, without asking any resolver);
//! - the client's resolver drops private addresses from every lookup, at connection
//!   time, so a name that later re-points at 127.0.0.1 (DNS rebinding) still fails;
//! - redirects are never followed and proxies from the environment never used, so
//!   the connection goes to the address that was checked, and nowhere else.

use std::error::Error as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::{Ipv4Net, Ipv6Net};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// The time a receiver has for the whole exchange, connecting included: a 2xx within
/// it is success, anything later is a failure to be retried. Short, because a
/// receiver should queue the event and answer, not process it while we wait.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// How much of a response body is read. The body means nothing to us, but reading a
/// small one lets the connection be reused; the cap stops a receiver that answers
/// with an endless body from holding us until the time-out.
pub const MAX_RESPONSE_BODY: usize = 64 * 1024;

/// IPv4 networks a webhook must not reach.
const BLOCKED_V4: [Ipv4Net; 14] = [
    v4([0, 0, 0, 0], 8),       // "this network"; 0.0.0.0 reaches localhost on Linux
    v4([10, 0, 0, 0], 8),      // private
    v4([100, 64, 0, 0], 10),   // carrier-grade NAT, often the provider's internal network
    v4([127, 0, 0, 0], 8),     // loopback
    v4([169, 254, 0, 0], 16),  // link-local, where cloud metadata services live
    v4([172, 16, 0, 0], 12),   // private
    v4([192, 0, 0, 0], 24),    // IETF protocol assignments
    v4([192, 0, 2, 0], 24),    // documentation (TEST-NET-1)
    v4([192, 168, 0, 0], 16),  // private
    v4([198, 18, 0, 0], 15),   // benchmarking
    v4([198, 51, 100, 0], 24), // documentation (TEST-NET-2)
    v4([203, 0, 113, 0], 24),  // documentation (TEST-NET-3)
    v4([224, 0, 0, 0], 4),     // multicast
    v4([240, 0, 0, 0], 4),     // reserved, and the broadcast address 255.255.255.255
];

/// IPv6 networks a webhook must not reach; addresses that embed an IPv4 address are
/// judged by that address instead (see [`embedded_v4`]).
const BLOCKED_V6: [Ipv6Net; 10] = [
    v6([0, 0, 0, 0, 0, 0, 0, 0], 96), // unspecified, loopback, deprecated IPv4-compatible
    v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), // local-use NAT64
    v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), // discard-only
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32), // Teredo: tunnels to an IPv4 address we cannot vet
    v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), // documentation
    v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), // documentation
    v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), // unique-local, the IPv6 "private" range
    v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), // link-local
    v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), // site-local (deprecated, still routable inside)
    v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), // multicast
];

/// The well-known NAT64 prefix: the last 32 bits are an IPv4 address the gateway
/// connects to.
const NAT64: Ipv6Net = v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96);
/// 6to4: bits 16..48 are an IPv4 address the packet is tunnelled to.
const SIX_TO_FOUR: Ipv6Net = v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16);

const fn v4(octets: [u8; 4], prefix: u8) -> Ipv4Net {
    let [a, b, c, d] = octets;
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), prefix)
}

const fn v6(segments: [u16; 8], prefix: u8) -> Ipv6Net {
    let [a, b, c, d, e, f, g, h] = segments;
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), prefix)
}

/// Whether a webhook may connect to `ip`: false for private, loopback, link-local,
/// unspecified, multicast, broadcast, carrier-grade NAT and documentation addresses,
/// and for IPv6 addresses that embed one of those.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => match embedded_v4(ip) {
            Some(inner) => is_public_v4(inner),
            None => !BLOCKED_V6.iter().any(|net| net.contains(&ip)),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    !BLOCKED_V4.iter().any(|net| net.contains(&ip))
}

/// The IPv4 address an IPv6 address leads to, for the forms that lead to one:
/// IPv4-mapped (`::ffff:a.b.c.d`, which a dual-stack socket connects over IPv4),
/// NAT64 and 6to4.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let o = ip.octets();
    if let Some(mapped) = ip.to_ipv4_mapped() {
        Some(mapped)
    } else if NAT64.contains(&ip) {
        Some(Ipv4Addr::new(o[12], o[13], o[14], o[15]))
    } else if SIX_TO_FOUR.contains(&ip) {
        Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]))
    } else {
        None
    }
}

/// Parses a webhook URL and refuses what could never be delivered safely. The
/// messages are shown to API users as they are.
///
/// Host names are not resolved here: what a name points to can change, so the
/// resolver checks it again on every delivery.
pub fn check_url(url: &str, allow_private: bool) -> Result<Url, String> {
    let parsed = Url::parse(url).map_err(|_| "The webhook URL is not a valid URL.".to_owned())?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("The webhook URL must start with http:// or https://.".to_owned());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("The webhook URL must not contain a user name or password.".to_owned());
    }
    let literal = match parsed.host() {
        None => return Err("The webhook URL must name a host.".to_owned()),
        Some(Host::Domain(_)) => None,
        Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
    };
    if let Some(ip) = literal
        && !allow_private
        && !is_public(ip)
    {
        return Err("The webhook URL points to a private or reserved address.".to_owned());
    }
    Ok(parsed)
}

/// The outcome of one delivery attempt, as an admin would want to see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The receiver's status code; `None` when no response arrived.
    pub status: Option<u16>,
    /// From the start of the attempt to the end of the response (or the failure).
    pub latency: Duration,
    /// Why the attempt failed before a status, or why a status is not success; a
    /// short phrase such as "connection refused".
    pub error: Option<String>,
}

impl Attempt {
    /// Whether the receiver accepted the event: a 2xx status, per the spec.
    pub fn succeeded(&self) -> bool {
        matches!(self.status, Some(200..=299))
    }
}

/// An HTTP client that delivers webhooks only to public addresses (unless told
/// otherwise, for development and tests). Cheap to clone; clones share connections.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    allow_private: bool,
    timeout: Duration,
}

impl Client {
    /// A client that refuses private addresses unless `allow_private`.
    pub fn new(allow_private: bool) -> Client {
        Client::with_timeout(allow_private, TIMEOUT)
    }

    /// Tests shorten the time-out rather than wait ten seconds.
    fn with_timeout(allow_private: bool, timeout: Duration) -> Client {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .dns_resolver(Arc::new(PublicResolver { allow_private }))
            .build()
            .expect("a client with built-in root certificates and no proxy settings builds");
        Client {
            http,
            allow_private,
            timeout,
        }
    }

    /// POSTs `body` as JSON with `headers` (typically [`super::sign::headers`]) and
    /// reports what happened; never errors, since every failure is an outcome to
    /// record and retry.
    pub async fn post(
        &self,
        url: &Url,
        headers: &[(&str, String)],
        body: impl Into<reqwest::Body>,
    ) -> Attempt {
        let started = Instant::now();
        let outcome = match check_url(url.as_str(), self.allow_private) {
            Ok(url) => self.exchange(url, headers, body.into()).await,
            Err(refused) => Err(refused),
        };
        let latency = started.elapsed();
        match outcome {
            Ok(status) => Attempt {
                status: Some(status),
                latency,
                error: (300..400)
                    .contains(&status)
                    .then(|| "redirects are not followed".to_owned()),
            },
            Err(error) => Attempt {
                status: None,
                latency,
                error: Some(error),
            },
        }
    }

    /// Sends the request and reads (a bounded part of) the response; the status, or
    /// a short description of why there is none.
    async fn exchange(
        &self,
        url: Url,
        headers: &[(&str, String)],
        body: reqwest::Body,
    ) -> Result<u16, String> {
        let mut request = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let mut response = request.send().await.map_err(|err| self.describe(&err))?;
        drain(&mut response).await;
        Ok(response.status().as_u16())
    }

    /// A short reason for an admin, from the deepest cause that says something.
    fn describe(&self, err: &reqwest::Error) -> String {
        if err.is_timeout() {
            return format!("timed out after {} s", self.timeout.as_secs());
        }
        let mut cause: Option<&(dyn std::error::Error + 'static)> = err.source();
        let mut deepest = None;
        while let Some(current) = cause {
            if let Some(refused) = current.downcast_ref::<ResolveError>() {
                return refused.0.clone();
            }
            if let Some(reason) = current.downcast_ref::<std::io::Error>().and_then(io_reason) {
                return reason.to_owned();
            }
            deepest = Some(current);
            cause = current.source();
        }
        let detail = deepest.map_or_else(|| err.to_string(), ToString::to_string);
        if err.is_connect() {
            format!("could not connect: {detail}")
        } else {
            format!("request failed: {detail}")
        }
    }
}

fn io_reason(err: &std::io::Error) -> Option<&'static str> {
    use std::io::ErrorKind;
    match err.kind() {
        ErrorKind::ConnectionRefused => Some("connection refused"),
        ErrorKind::ConnectionReset => Some("connection reset"),
        ErrorKind::ConnectionAborted => Some("connection aborted"),
        ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => Some("host unreachable"),
        _ => None,
    }
}

/// Reads the body until its end or [`MAX_RESPONSE_BODY`], returning the bytes read.
/// A failure while reading is ignored: the status has already decided the attempt.
async fn drain(response: &mut reqwest::Response) -> usize {
    let mut read = 0;
    while read < MAX_RESPONSE_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => read += chunk.len(),
            Ok(None) | Err(_) => break,
        }
    }
    read
}

/// Resolves with the system resolver and keeps only public addresses, at the moment
/// of connecting, so the address connected to is the address checked.
struct PublicResolver {
    allow_private: bool,
}

impl Resolve for PublicResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addrs = resolve_public(name.as_str(), allow_private).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Why a host name gave no address to connect to; its text is shown as it is.
#[derive(Debug)]
struct ResolveError(String);

impl std::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ResolveError {}

/// The addresses of `host` a webhook may connect to; port 0, which the connector
/// replaces with the URL's.
async fn resolve_public(host: &str, allow_private: bool) -> Result<Vec<SocketAddr>, ResolveError> {
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|_| ResolveError(format!("could not resolve {host}")))?
        .collect();
    if found.is_empty() {
        return Err(ResolveError(format!("could not resolve {host}")));
    }
    let allowed: Vec<SocketAddr> = found
        .into_iter()
        .filter(|addr| allow_private || is_public(addr.ip()))
        .collect();
    if allowed.is_empty() {
        return Err(ResolveError(format!(
            "{host} resolves only to private addresses"
        )));
    }
    Ok(allowed)
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::future::Future;
    use std::sync::Mutex;

    use axum::Router;
    use axum::body::{Body, Bytes};
    use axum::extract::State;
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    use axum::routing::post;

    use super::*;

    /// Paths the test server was asked for, in order.
    type Hits = Arc<Mutex<Vec<&'static str>>>;

    static CHUNK: [u8; 16 * 1024] = [b'x'; 16 * 1024];

    /// Fails the test instead of hanging it when an exchange never ends.
    async fn within<F: Future>(future: F) -> F::Output {
        tokio::time::timeout(Duration::from_secs(20), future)
            .await
            .expect("finished within 20 s")
    }

    fn hit(hits: &Hits, path: &'static str) {
        hits.lock().expect("no test thread panicked").push(path);
    }

    fn paths(hits: &Hits) -> Vec<&'static str> {
        hits.lock().expect("no test thread panicked").clone()
    }

    /// A receiver on 127.0.0.1 with one route per behaviour under test.
    async fn receiver() -> (SocketAddr, Hits) {
        let hits = Hits::default();
        let app = Router::new()
            .route(
                "/ok",
                post(|State(h): State<Hits>| async move {
                    hit(&h, "/ok");
                    StatusCode::OK
                }),
            )
            .route(
                "/fail",
                post(|State(h): State<Hits>| async move {
                    hit(&h, "/fail");
                    StatusCode::INTERNAL_SERVER_ERROR
                }),
            )
            .route(
                "/redirect",
                post(|State(h): State<Hits>| async move {
                    hit(&h, "/redirect");
                    (StatusCode::FOUND, [(header::LOCATION, "/ok")])
                }),
            )
            .route(
                "/endless",
                post(|State(h): State<Hits>| async move {
                    hit(&h, "/endless");
                    let chunks = futures_util::stream::repeat_with(|| {
                        Ok::<_, Infallible>(Bytes::from_static(&CHUNK))
                    });
                    Body::from_stream(chunks).into_response()
                }),
            )
            .route(
                "/slow",
                post(|State(h): State<Hits>| async move {
                    hit(&h, "/slow");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    StatusCode::OK
                }),
            )
            .with_state(hits.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port on loopback");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (addr, hits)
    }

    fn url(text: &str) -> Url {
        Url::parse(text).expect("test URLs parse")
    }

    async fn post_to(client: &Client, target: &Url) -> Attempt {
        let headers = [("webhook-id", "msg_1".to_owned())];
        within(client.post(target, &headers, r#"{"type":"PING"}"#.to_owned())).await
    }

    #[test]
    fn is_public_sorts_a_table_of_addresses() {
        let cases: &[(&str, bool)] = &[
            ("93.184.216.34", true),
            ("8.8.8.8", true),
            ("2606:4700:4700::1111", true),
            ("::ffff:8.8.8.8", true),
            ("64:ff9b::808:808", true),
            ("0.0.0.0", false),
            ("10.1.2.3", false),
            ("100.64.0.1", false),
            ("100.127.255.254", false),
            ("127.0.0.1", false),
            ("127.255.0.9", false),
            ("169.254.169.254", false),
            ("172.16.0.1", false),
            ("172.31.255.255", false),
            ("192.0.2.7", false),
            ("192.168.1.1", false),
            ("198.18.0.1", false),
            ("198.51.100.7", false),
            ("203.0.113.7", false),
            ("224.0.0.1", false),
            ("255.255.255.255", false),
            ("::", false),
            ("::1", false),
            ("::127.0.0.1", false),
            ("2001:db8::1", false),
            ("fc00::1", false),
            ("fd12:3456::1", false),
            ("fe80::1", false),
            ("ff02::1", false),
            ("::ffff:127.0.0.1", false),
            ("::ffff:10.0.0.1", false),
            ("::ffff:169.254.169.254", false),
            ("64:ff9b::a9fe:a9fe", false),
            ("2002:7f00:1::", false),
        ];
        for (text, public) in cases {
            let ip: IpAddr = text.parse().expect("table addresses parse");
            assert_eq!(is_public(ip), *public, "{text}");
        }
    }

    #[test]
    fn check_url_refuses_unsafe_urls() {
        let cases = [
            ("ftp://example.com/hook", "http:// or https://"),
            ("http://10.0.0.1/", "private"),
            ("http://[::1]/", "private"),
            ("http://169.254.169.254/latest/meta-data", "private"),
            ("http://[::ffff:127.0.0.1]/", "private"),
            ("http://0x7f000001/", "private"),
            ("http://user:pw@example.com/", "user name or password"),
            ("http://user@example.com/", "user name or password"),
            ("example.com/hook", "not a valid URL"),
        ];
        for (text, expected) in cases {
            let error = check_url(text, false).expect_err(text);
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn check_url_accepts_public_urls() {
        for text in [
            "https://hooks.example.com/casefile?team=1",
            "http://93.184.216.34:8080/hook",
            "https://[2606:4700:4700::1111]/",
        ] {
            assert!(check_url(text, false).is_ok(), "{text}");
        }
    }

    #[test]
    fn check_url_allows_private_hosts_when_told() {
        assert!(check_url("http://127.0.0.1:9000/hook", true).is_ok());
        assert!(check_url("http://user:pw@127.0.0.1/", true).is_err());
    }

    #[tokio::test]
    async fn loopback_literal_is_refused_before_any_request() {
        let (addr, hits) = receiver().await;
        let attempt = post_to(&Client::new(false), &url(&format!("http://{addr}/ok"))).await;
        assert!(!attempt.succeeded());
        assert_eq!(attempt.status, None);
        assert!(attempt.error.is_some());
        assert!(paths(&hits).is_empty());
    }

    #[tokio::test]
    async fn name_resolving_to_loopback_is_refused_before_any_request() {
        let (addr, hits) = receiver().await;
        let target = url(&format!("http://localhost:{}/ok", addr.port()));
        let attempt = post_to(&Client::new(false), &target).await;
        assert_eq!(attempt.status, None);
        assert_eq!(
            attempt.error.as_deref(),
            Some("localhost resolves only to private addresses")
        );
        assert!(paths(&hits).is_empty());
    }

    #[tokio::test]
    async fn ok_response_succeeds() {
        let (addr, hits) = receiver().await;
        let attempt = post_to(&Client::new(true), &url(&format!("http://{addr}/ok"))).await;
        assert!(attempt.succeeded(), "{attempt:?}");
        assert_eq!(attempt.status, Some(200));
        assert_eq!(attempt.error, None);
        assert_eq!(paths(&hits), ["/ok"]);
    }

    #[tokio::test]
    async fn name_resolving_to_loopback_is_reached_when_private_is_allowed() {
        let (addr, hits) = receiver().await;
        let target = url(&format!("http://localhost:{}/ok", addr.port()));
        let attempt = post_to(&Client::new(true), &target).await;
        assert!(attempt.succeeded(), "{attempt:?}");
        assert_eq!(paths(&hits), ["/ok"]);
    }

    #[tokio::test]
    async fn server_error_fails_with_its_status() {
        let (addr, _hits) = receiver().await;
        let attempt = post_to(&Client::new(true), &url(&format!("http://{addr}/fail"))).await;
        assert!(!attempt.succeeded());
        assert_eq!(attempt.status, Some(500));
    }

    #[tokio::test]
    async fn redirect_is_not_followed() {
        let (addr, hits) = receiver().await;
        let attempt = post_to(&Client::new(true), &url(&format!("http://{addr}/redirect"))).await;
        assert!(!attempt.succeeded());
        assert_eq!(attempt.status, Some(302));
        assert_eq!(attempt.error.as_deref(), Some("redirects are not followed"));
        assert_eq!(paths(&hits), ["/redirect"]);
    }

    #[tokio::test]
    async fn endless_response_body_is_cut_without_error() {
        let (addr, _hits) = receiver().await;
        let attempt = post_to(&Client::new(true), &url(&format!("http://{addr}/endless"))).await;
        assert!(attempt.succeeded(), "{attempt:?}");
        assert_eq!(attempt.error, None);
        assert!(attempt.latency < TIMEOUT / 2, "{attempt:?}");
    }

    #[tokio::test]
    async fn drain_stops_soon_after_the_cap() {
        let (addr, _hits) = receiver().await;
        let client = Client::new(true);
        let mut response = within(client.http.post(format!("http://{addr}/endless")).send())
            .await
            .expect("the receiver answers");
        let read = within(drain(&mut response)).await;
        assert!(read >= MAX_RESPONSE_BODY, "{read}");
        assert!(read < 2 * MAX_RESPONSE_BODY, "{read}");
    }

    #[tokio::test]
    async fn slow_receiver_times_out() {
        let (addr, _hits) = receiver().await;
        let client = Client::with_timeout(true, Duration::from_secs(1));
        let attempt = post_to(&client, &url(&format!("http://{addr}/slow"))).await;
        assert_eq!(attempt.status, None);
        assert_eq!(attempt.error.as_deref(), Some("timed out after 1 s"));
    }

    #[tokio::test]
    async fn closed_port_is_connection_refused() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port on loopback");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        drop(listener);
        let attempt = post_to(&Client::new(true), &url(&format!("http://{addr}/ok"))).await;
        assert_eq!(attempt.status, None);
        assert_eq!(attempt.error.as_deref(), Some("connection refused"));
    }
}
