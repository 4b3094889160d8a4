//! Prometheus text exposition (format 0.0.4): the recorder an embedder exporting agent-memory's
//! metrics installs (the benchmark's `--metrics on`, the example runtime), a small HTTP
//! endpoint that serves its text (the example runtime's `/metrics`), and a strict parser that
//! checks a scrape the way Prometheus reads it.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// The largest request head the endpoint reads; a scraper sends a few hundred bytes.
const MAX_REQUEST_HEAD: usize = 8 << 10;

/// How long a client gets to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How often [`install_recorder`]'s upkeep folds the histograms' recent values into their
/// buckets: what the exporter's own listener does.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Install a Prometheus recorder for agent-memory's metrics, with its latency buckets and
/// descriptions, as an embedder exporting them would; a thread keeps the histograms folded
/// (so they do not grow for the life of the process while nobody scrapes).
pub fn install_recorder() -> anyhow::Result<metrics_exporter_prometheus::PrometheusHandle> {
    use anyhow::Context as _;
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(agent_memory::telemetry::LATENCY_BUCKETS)
        .context("setting the histogram buckets")?
        .install_recorder()
        .context("installing the Prometheus recorder")?;
    agent_memory::telemetry::describe_metrics();
    let upkeep = handle.clone();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(UPKEEP_EVERY);
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

/// Serve `render()` at `GET /metrics` on `listener` until the task is dropped: one response per
/// connection (`Connection: close`), 404 for other paths, 405 for other methods.
pub async fn serve(listener: TcpListener, render: impl Fn() -> String + Clone + Send + 'static) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let render = render.clone();
        tokio::spawn(async move {
            let Ok(Some(head)) = tokio::time::timeout(REQUEST_TIMEOUT, read_head(&mut stream))
                .await
                .map(Result::ok)
                .map(Option::flatten)
            else {
                return;
            };
            let request_line = head.lines().next().unwrap_or_default();
            let mut parts = request_line.split(' ');
            let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let (status, body) = match (method, path.split('?').next().unwrap_or("")) {
                ("GET", "/metrics") => ("200 OK", render()),
                ("GET", _) => ("404 Not Found", "only /metrics is served\n".to_string()),
                _ => ("405 Method Not Allowed", "only GET is served\n".to_string()),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

/// The request head (up to the blank line), or `None` if it is over [`MAX_REQUEST_HEAD`] or the
/// client stops sending.
async fn read_head(stream: &mut tokio::net::TcpStream) -> std::io::Result<Option<String>> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        let read = stream.read(&mut buffer).await?;
        if read == 0 || head.len() + read > MAX_REQUEST_HEAD {
            return Ok(None);
        }
        head.extend_from_slice(&buffer[..read]);
    }
    Ok(Some(String::from_utf8_lossy(&head).into_owned()))
}

/// `GET /metrics` from `addr`, synchronously: the status line and the body.
pub fn scrape(addr: &str) -> anyhow::Result<(String, String)> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAccept: text/plain\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("no end of headers in {response:?}"))?;
    let status = head.lines().next().unwrap_or_default().to_string();
    Ok((status, body.to_string()))
}

/// One sample of a scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample's name (a histogram's carry `_bucket`, `_sum`, `_count`).
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// A parsed scrape: the samples, and each family's declared type.
#[derive(Debug, Default)]
pub struct Scrape {
    /// Every sample, in order.
    pub samples: Vec<Sample>,
    /// `# TYPE` of each family.
    pub types: BTreeMap<String, String>,
    /// `# HELP` of each family.
    pub help: BTreeMap<String, String>,
}

impl Scrape {
    /// The samples named `name` whose labels include every pair of `labels`.
    pub fn find<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |sample| {
            sample.name == name
                && labels
                    .iter()
                    .all(|(key, value)| sample.labels.get(*key).map(String::as_str) == Some(value))
        })
    }

    /// The sum of [`Scrape::find`]'s values.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.find(name, labels).map(|sample| sample.value).sum()
    }
}

/// Parse `text` as Prometheus text format 0.0.4, strictly: names and label names by the
/// format's grammar, label values quoted with its escapes, a value that parses as a float
/// (`NaN`, `+Inf`, `-Inf` too), an optional integer timestamp, at most one `# TYPE` per
/// family and before its samples, no label named twice on a sample, no sample twice.
pub fn parse(text: &str) -> Result<Scrape, String> {
    let mut scrape = Scrape::default();
    let mut seen_samples = HashSet::new();
    let mut families_with_samples = HashSet::new();
    for (number, line) in text.lines().enumerate() {
        let at = |error: String| format!("line {}: {error}: {line:?}", number + 1);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start().splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("TYPE"), Some(name), Some(kind)) => {
                    check_metric_name(name).map_err(at)?;
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(at(format!("unknown type {kind}")));
                    }
                    if families_with_samples.contains(name) {
                        return Err(at(format!("TYPE of {name} after its samples")));
                    }
                    if scrape
                        .types
                        .insert(name.to_string(), kind.to_string())
                        .is_some()
                    {
                        return Err(at(format!("second TYPE for {name}")));
                    }
                }
                (Some("HELP"), Some(name), help) => {
                    check_metric_name(name).map_err(at)?;
                    scrape
                        .help
                        .insert(name.to_string(), help.unwrap_or("").to_string());
                }
                _ => {} // Any other comment.
            }
            continue;
        }
        let sample = parse_sample(line).map_err(at)?;
        families_with_samples.insert(family_of(&sample.name, &scrape.types));
        let identity = format!("{}{:?}", sample.name, sample.labels);
        if !seen_samples.insert(identity) {
            return Err(at("the same sample twice".to_string()));
        }
        scrape.samples.push(sample);
    }
    Ok(scrape)
}

/// The family a sample belongs to: a histogram's or summary's samples carry suffixes.
fn family_of(name: &str, types: &BTreeMap<String, String>) -> String {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && matches!(
                types.get(base).map(String::as_str),
                Some("histogram" | "summary")
            )
        {
            return base.to_string();
        }
    }
    name.to_string()
}

fn check_metric_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        Ok(())
    } else {
        Err(format!("invalid metric name {name:?}"))
    }
}

fn check_label_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(format!("invalid label name {name:?}"))
    }
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    check_metric_name(name)?;
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = after;
        loop {
            rest = rest.trim_start();
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let equals = rest.find('=').ok_or("a label without =")?;
            let label = rest[..equals].trim();
            check_label_name(label)?;
            rest = rest[equals + 1..]
                .strip_prefix('"')
                .ok_or("an unquoted label value")?;
            let mut value = String::new();
            let mut chars = rest.char_indices();
            let close = loop {
                match chars.next() {
                    Some((at, '"')) => break at,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, 'n')) => value.push('\n'),
                        other => return Err(format!("invalid escape {other:?}")),
                    },
                    Some((_, c)) => value.push(c),
                    None => return Err("an unterminated label value".to_string()),
                }
            };
            if labels.insert(label.to_string(), value).is_some() {
                return Err(format!("label {label} twice"));
            }
            rest = &rest[close + 1..];
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
    }
    let mut fields = rest.split_whitespace();
    let value = fields.next().ok_or("no value")?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        number => number
            .parse::<f64>()
            .map_err(|error| format!("value {number:?}: {error}"))?,
    };
    if let Some(timestamp) = fields.next() {
        timestamp
            .parse::<i64>()
            .map_err(|error| format!("timestamp {timestamp:?}: {error}"))?;
    }
    if fields.next().is_some() {
        return Err("more than a value and a timestamp".to_string());
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_well_formed_scrape_parses_with_escapes_and_histograms() {
        let text = "# HELP a_total Calls.\n# TYPE a_total counter\n\
                    a_total{handle=\"x\",why=\"q\\\"uote\\\\ \\n\"} 3\n\
                    # TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 2\n\
                    h_sum 0.3\nh_count 2\ng -1.5e-3 1700000000000\n";
        let scrape = parse(text).unwrap();
        assert_eq!(scrape.samples.len(), 6);
        assert_eq!(scrape.samples[0].labels["why"], "q\"uote\\ \n");
        assert_eq!(scrape.sum("h_count", &[]), 2.0);
        assert_eq!(scrape.types["h"], "histogram");
    }

    #[test]
    fn malformed_lines_are_refused() {
        for bad in [
            "1bad 1",
            "a{b=c} 1",
            "a{b=\"c} 1",
            "a{b=\"c\",b=\"d\"} 1",
            "a one",
            "a 1 2 3",
            "a 1\na 1",
            "a 1\n# TYPE a counter",
            "# TYPE a counter\n# TYPE a gauge",
            "# TYPE a widget",
            "a{b=\"\\x\"} 1",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}
