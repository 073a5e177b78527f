//! The S3 protocol, as much of it as a mirror needs: get, head, put
//! (create-only or not, with the headers a static-site reader needs),
//! delete and list. Requests are signed by `rusty-s3` (`SigV4` presigned
//! URLs, no I/O of its own) and sent by the fetch layer's client, so the
//! bucket is reached with the same trust store, proxy rules, timeouts and
//! retries as every registry.
//!
//! Where and as whom, the usual AWS way: `AWS_ENDPOINT_URL_S3` or
//! `AWS_ENDPOINT_URL` (path-style requests, as S3-compatible servers
//! expect) or AWS itself (`https://s3.REGION.amazonaws.com`, virtual-host
//! style); `AWS_REGION` / `AWS_DEFAULT_REGION` (default `us-east-1`);
//! `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`),
//! or else the `AWS_PROFILE` (default `default`) section of
//! `AWS_SHARED_CREDENTIALS_FILE` (default `~/.aws/credentials`).

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

use crate::error::{Error, Result};
use crate::fetch::{Client, Payload, Reply};

/// How long a signed request stays valid: long enough for one large upload.
const SIGNED_FOR: Duration = Duration::from_hours(6);
/// Objects larger than this go up as multipart uploads of parts this
/// large (or larger, to stay within S3's 10 000 parts): one PUT takes at
/// most 5 GiB, and a part that fails is sent again alone.
const PART: u64 = 16 << 20;
const MAX_PARTS: u64 = 10_000;
/// Parts in flight at once.
const PART_JOBS: usize = 4;
/// The largest object S3 keeps.
pub(super) const MAX_OBJECT: u64 = 5 << 40;

/// Opens `len` bytes from `offset` of an object's source, afresh for each attempt.
pub(super) type OpenRange<'a> = &'a (dyn Fn(u64, u64) -> std::io::Result<Box<dyn Read + Send + 'static>> + Sync);

/// A bucket and a prefix in it, as `s3://BUCKET/PREFIX` names them.
pub(super) struct S3 {
    bucket: Bucket,
    credentials: Credentials,
    /// `PREFIX/`, or empty for the whole bucket.
    prefix: String,
    /// `s3://BUCKET/PREFIX`, as messages name it.
    pub(super) url: String,
    http: Client,
}

/// One key of a listing of the prefix.
pub(super) struct Listed {
    /// Relative to the prefix.
    pub(super) key: String,
    pub(super) size: u64,
}

/// What a HEAD says of an object.
pub(super) struct Head {
    pub(super) size: u64,
    /// The BLAKE3 airlock recorded in the object's metadata, if any.
    pub(super) blake3: Option<String>,
}

/// The headers an object is created with.
pub(super) struct Put<'a> {
    pub(super) content_type: &'a str,
    pub(super) cache_control: &'a str,
    pub(super) blake3: &'a str,
    /// Fail with [`Created::Exists`] rather than replace an object already there.
    pub(super) create_only: bool,
}

/// What a put did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Created {
    Written,
    /// A create-only put found the key taken.
    Exists,
}

impl S3 {
    /// Parses `s3://BUCKET[/PREFIX]` and reads endpoint, region and
    /// credentials from the environment.
    pub(super) fn from_url(url: &str) -> Result<Self> {
        let usage = |why: &str| Error::Usage(format!("{url}: {why}"));
        let rest = url.strip_prefix("s3://").ok_or_else(|| usage("not an s3:// address"))?;
        let (name, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = prefix.trim_end_matches('/');
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b))
        {
            return Err(usage(
                "the bucket name must be lower-case letters, digits, '-' and '.'; give s3://BUCKET/PREFIX",
            ));
        }
        if !prefix.is_empty() && prefix.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
            return Err(usage("the prefix has an empty, '.' or '..' segment; give s3://BUCKET/PREFIX"));
        }
        let region = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")).unwrap_or_else(|| "us-east-1".into());
        let (endpoint, style) = match env("AWS_ENDPOINT_URL_S3").or_else(|| env("AWS_ENDPOINT_URL")) {
            Some(endpoint) => (endpoint, UrlStyle::Path),
            None => (format!("https://s3.{region}.amazonaws.com"), UrlStyle::VirtualHost),
        };
        let endpoint_url = endpoint
            .parse()
            .map_err(|e| usage(&format!("the endpoint {endpoint} is not a URL ({e}); check AWS_ENDPOINT_URL")))?;
        let bucket = Bucket::new(endpoint_url, style, name.to_owned(), region)
            .map_err(|e| usage(&format!("cannot address this bucket at {endpoint} ({e}); check AWS_ENDPOINT_URL")))?;
        let credentials = credentials().ok_or_else(|| {
            usage(
                "no AWS credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE naming a section of ~/.aws/credentials",
            )
        })?;
        let prefix = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
        Ok(S3 {
            bucket,
            credentials,
            prefix,
            url: url.trim_end_matches('/').to_owned(),
            http: Client::new(Duration::from_mins(1), 4)?,
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// An error naming the object and what to check.
    fn failed(&self, what: &str, key: &str, why: &dyn std::fmt::Display) -> Error {
        // The reason without its "(os error N)", which would end the line
        // there (`Error::Io` cuts it off, and all that follows).
        let why = why.to_string();
        let why = why.split_once(" (os error").map_or(why.as_str(), |(reason, _)| reason);
        Error::Io {
            path: PathBuf::from(format!("{}/{key}", self.url)),
            source: std::io::Error::other(format!("{what} failed ({why})")),
            hint: "check the endpoint (AWS_ENDPOINT_URL), the credentials and the bucket's permissions, then run the command again",
        }
    }

    /// Sends `method` to the signed `url` for `key`; `what` names the
    /// request in the error that ends a transport failure.
    fn send(
        &self,
        what: &str,
        key: &str,
        url: &str,
        headers: &[(&str, String)],
        payload: &Payload<'_>,
    ) -> Result<Reply> {
        let method = if what == "LIST" { "GET" } else { what };
        self.http.send(method, url, headers, payload).map_err(|e| self.failed(what, key, &e))
    }

    /// The object at `key`, streamed; `None` when there is none.
    pub(super) fn get(&self, key: &str) -> Result<Option<Box<dyn Read + Send>>> {
        let full = self.key(key);
        let url = self.bucket.get_object(Some(&self.credentials), &full).sign(SIGNED_FOR);
        let reply = self.send("GET", key, url.as_str(), &[], &Payload::Empty)?;
        match reply.status {
            200 => Ok(Some(reply.body)),
            404 => Ok(None),
            other => Err(self.failed("GET", key, &status_line(other, reply))),
        }
    }

    /// The whole object at `key` if it holds at most `cap` bytes.
    pub(super) fn get_bytes(&self, key: &str, cap: u64) -> Result<Option<Vec<u8>>> {
        let Some(body) = self.get(key)? else { return Ok(None) };
        let mut bytes = Vec::new();
        body.take(cap + 1).read_to_end(&mut bytes).map_err(|e| self.failed("GET", key, &e))?;
        if bytes.len() as u64 > cap {
            return Err(self.failed("GET", key, &format!("more than {cap} bytes")));
        }
        Ok(Some(bytes))
    }

    pub(super) fn head(&self, key: &str) -> Result<Option<Head>> {
        let full = self.key(key);
        let url = self.bucket.head_object(Some(&self.credentials), &full).sign(SIGNED_FOR);
        let reply = self.send("HEAD", key, url.as_str(), &[], &Payload::Empty)?;
        match reply.status {
            200 => Ok(Some(Head {
                size: reply.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0),
                blake3: reply.header("x-amz-meta-blake3").map(str::to_owned),
            })),
            404 => Ok(None),
            other => Err(self.failed("HEAD", key, &status_line(other, reply))),
        }
    }

    /// PUTs `payload` at `key` with the headers of `put`.
    pub(super) fn put(&self, key: &str, payload: &Payload<'_>, put: &Put<'_>) -> Result<Created> {
        let full = self.key(key);
        let mut action = self.bucket.put_object(Some(&self.credentials), &full);
        let mut headers = object_headers(put);
        if put.create_only {
            headers.push(("if-none-match", "*".to_owned()));
        }
        for (name, value) in &headers {
            action.headers_mut().insert(*name, value.clone());
        }
        let url = action.sign(SIGNED_FOR);
        let reply = self.send("PUT", key, url.as_str(), &headers, payload)?;
        match reply.status {
            200 | 201 | 204 => Ok(Created::Written),
            // 409: a create-only put racing another one for the same key.
            412 | 409 if put.create_only => Ok(Created::Exists),
            other => Err(self.failed("PUT", key, &status_line(other, reply))),
        }
    }

    /// PUTs the `size` bytes `open` gives at `key`: in one request when
    /// they are few, else as a multipart upload.
    pub(super) fn put_sized(&self, key: &str, open: OpenRange<'_>, size: u64, put: &Put<'_>) -> Result<Created> {
        if size <= PART {
            return self.put(key, &Payload::Stream(&|| open(0, size), size), put);
        }
        if size > MAX_OBJECT {
            return Err(self.failed("PUT", key, &format!("{size} bytes is more than S3 keeps in one object (5 TiB)")));
        }
        // Not a part uploaded only to find the key taken at the end.
        if put.create_only && self.head(key)?.is_some() {
            return Ok(Created::Exists);
        }
        let upload_id = self.create_multipart(key, put)?;
        let done = self
            .upload_parts(key, &upload_id, open, size)
            .and_then(|etags| self.complete_multipart(key, &upload_id, &etags, put.create_only));
        if !matches!(done, Ok(Created::Written)) {
            // Best effort: what is left is billed until a lifecycle rule aborts it.
            let full = self.key(key);
            let url = self.bucket.abort_multipart_upload(Some(&self.credentials), &full, &upload_id).sign(SIGNED_FOR);
            let _ = self.send("DELETE", key, url.as_str(), &[], &Payload::Empty);
        }
        done
    }

    fn create_multipart(&self, key: &str, put: &Put<'_>) -> Result<String> {
        let full = self.key(key);
        let mut action = self.bucket.create_multipart_upload(Some(&self.credentials), &full);
        let headers = object_headers(put);
        for (name, value) in &headers {
            action.headers_mut().insert(*name, value.clone());
        }
        let reply = self.send("POST", key, action.sign(SIGNED_FOR).as_str(), &headers, &Payload::Empty)?;
        if reply.status != 200 {
            let status = reply.status;
            return Err(self.failed("POST", key, &status_line(status, reply)));
        }
        let text = String::from_utf8_lossy(&reply.text(1 << 16)).into_owned();
        let created = rusty_s3::actions::CreateMultipartUpload::parse_response(&text)
            .map_err(|e| self.failed("POST", key, &format!("unreadable answer: {e}")))?;
        Ok(created.upload_id().to_owned())
    }

    /// Sends the parts, [`PART_JOBS`] at a time (one stream to S3 is far
    /// slower than the link); their `ETag`s, in part order.
    fn upload_parts(&self, key: &str, upload_id: &str, open: OpenRange<'_>, size: u64) -> Result<Vec<String>> {
        let full = self.key(key);
        let part = size.div_ceil(MAX_PARTS).max(PART).next_multiple_of(1 << 20);
        let parts: Vec<(u16, u64)> = (0..size)
            .step_by(usize::try_from(part).unwrap_or(usize::MAX))
            .enumerate()
            .map(|(index, offset)| (u16::try_from(index + 1).expect("at most 10 000 parts"), offset))
            .collect();
        crate::fetch::parallel(&parts, PART_JOBS, |&(number, offset)| {
            let len = part.min(size - offset);
            let url = self.bucket.upload_part(Some(&self.credentials), &full, number, upload_id).sign(SIGNED_FOR);
            let reply = self.send("PUT", key, url.as_str(), &[], &Payload::Stream(&|| open(offset, len), len))?;
            match (reply.status, reply.header("etag")) {
                (200, Some(etag)) => Ok(etag.to_owned()),
                (status, _) => Err(self.failed("PUT", key, &status_line(status, reply))),
            }
        })
    }

    fn complete_multipart(&self, key: &str, upload_id: &str, etags: &[String], create_only: bool) -> Result<Created> {
        let full = self.key(key);
        let mut action = self.bucket.complete_multipart_upload(
            Some(&self.credentials),
            &full,
            upload_id,
            etags.iter().map(String::as_str),
        );
        let mut headers = Vec::new();
        if create_only {
            headers.push(("if-none-match", "*".to_owned()));
            action.headers_mut().insert("if-none-match", "*");
        }
        let url = action.sign(SIGNED_FOR);
        let body = action.body();
        let reply = self.send("POST", key, url.as_str(), &headers, &Payload::Bytes(body.as_bytes()))?;
        match reply.status {
            // S3 may answer 200 and fail in the body.
            200 => {
                let text = String::from_utf8_lossy(&reply.text(1 << 16)).into_owned();
                rusty_s3::actions::CompleteMultipartUploadResponse::parse(&text)
                    .map(|_| Created::Written)
                    .map_err(|_| self.failed("POST", key, &error_code(200, &text)))
            }
            412 | 409 if create_only => Ok(Created::Exists),
            other => Err(self.failed("POST", key, &status_line(other, reply))),
        }
    }

    /// `len` bytes of the object at `key` from `offset`, streamed.
    pub(super) fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Option<Box<dyn Read + Send>>> {
        let full = self.key(key);
        let url = self.bucket.get_object(Some(&self.credentials), &full).sign(SIGNED_FOR);
        let range = [("range", format!("bytes={offset}-{}", offset + len - 1))];
        let reply = self.send("GET", key, url.as_str(), &range, &Payload::Empty)?;
        match reply.status {
            206 => Ok(Some(Box::new(reply.body.take(len)))),
            200 if offset == 0 => Ok(Some(Box::new(reply.body.take(len)))),
            404 => Ok(None),
            other => Err(self.failed("GET", key, &status_line(other, reply))),
        }
    }

    /// Deletes `key` (deleting what is not there succeeds, as S3 says).
    pub(super) fn delete(&self, key: &str) -> Result<()> {
        let full = self.key(key);
        let url = self.bucket.delete_object(Some(&self.credentials), &full).sign(SIGNED_FOR);
        let reply = self.send("DELETE", key, url.as_str(), &[], &Payload::Empty)?;
        match reply.status {
            200 | 204 | 404 => Ok(()),
            other => Err(self.failed("DELETE", key, &status_line(other, reply))),
        }
    }

    /// The first `n` keys under the prefix (relative to it), in S3's order.
    pub(super) fn first_keys(&self, n: usize) -> Result<Vec<String>> {
        Ok(self.list_page(n, None)?.0.into_iter().map(|listed| listed.key).collect())
    }

    /// Calls `each` with every key under the prefix, a page of 1000 at a time.
    pub(super) fn for_each_key(&self, mut each: impl FnMut(Listed) -> Result<()>) -> Result<()> {
        let mut token = None;
        loop {
            let (keys, next) = self.list_page(1000, token.as_deref())?;
            keys.into_iter().try_for_each(&mut each)?;
            match next {
                Some(next) => token = Some(next),
                None => return Ok(()),
            }
        }
    }

    /// Up to `n` keys from where `token` says; the token of the next page.
    fn list_page(&self, n: usize, token: Option<&str>) -> Result<(Vec<Listed>, Option<String>)> {
        let mut action = self.bucket.list_objects_v2(Some(&self.credentials));
        if !self.prefix.is_empty() {
            action.with_prefix(self.prefix.as_str());
        }
        if let Some(token) = token {
            action.with_continuation_token(token);
        }
        action.with_max_keys(n);
        let url = action.sign(SIGNED_FOR);
        let reply = self.send("LIST", "", url.as_str(), &[], &Payload::Empty)?;
        if reply.status != 200 {
            let status = reply.status;
            return Err(self.failed("LIST", "", &status_line(status, reply)));
        }
        let text = String::from_utf8_lossy(&reply.text(16 << 20)).into_owned();
        let page = rusty_s3::actions::ListObjectsV2::parse_response(&text)
            .map_err(|e| self.failed("LIST", "", &format!("unreadable answer: {e}")))?;
        let keys = page
            .contents
            .into_iter()
            .filter_map(|o| {
                let key = o.key.strip_prefix(self.prefix.as_str())?.to_owned();
                Some(Listed { key, size: o.size.unwrap_or(0) })
            })
            .collect();
        Ok((keys, page.next_continuation_token.filter(|t| !t.is_empty())))
    }
}

/// The headers an object is created with, by a PUT or a multipart upload.
fn object_headers(put: &Put<'_>) -> Vec<(&'static str, String)> {
    vec![
        ("content-type", put.content_type.to_owned()),
        ("cache-control", put.cache_control.to_owned()),
        ("x-amz-meta-blake3", put.blake3.to_owned()),
    ]
}

/// `HTTP 403: AccessDenied` from an S3 error answer.
fn status_line(status: u16, reply: Reply) -> String {
    error_code(status, &String::from_utf8_lossy(&reply.text(4096)))
}

fn error_code(status: u16, body: &str) -> String {
    let code = body.split_once("<Code>").and_then(|(_, rest)| rest.split_once("</Code>")).map(|(code, _)| code);
    match code {
        Some(code) => format!("HTTP {status}: {}", crate::escape::one_line(code)),
        None => format!("HTTP {status}"),
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Environment credentials, else the profile's from the shared credentials file.
fn credentials() -> Option<Credentials> {
    if let (Some(key), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        return Some(match env("AWS_SESSION_TOKEN") {
            Some(token) => Credentials::new_with_token(key, secret, token),
            None => Credentials::new(key, secret),
        });
    }
    let file = env("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".aws/credentials")))?;
    let text = std::fs::read_to_string(file).ok()?;
    let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".into());
    let section = profile_section(&text, &profile);
    let value = |name: &str| section.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let (key, secret) = (value("aws_access_key_id")?, value("aws_secret_access_key")?);
    Some(match value("aws_session_token") {
        Some(token) => Credentials::new_with_token(key, secret, token),
        None => Credentials::new(key, secret),
    })
}

/// The `key = value` lines of section `[profile]` of an INI file.
fn profile_section(text: &str, profile: &str) -> Vec<(String, String)> {
    let mut inside = false;
    let mut values = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == profile;
        } else if inside && let Some((k, v)) = line.split_once('=') {
            values.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_section_is_read_and_others_ignored() {
        let text = "[default]\naws_access_key_id = A\n# c\n[work]\naws_access_key_id=B\naws_secret_access_key = S\n";
        assert_eq!(
            profile_section(text, "work"),
            [("aws_access_key_id".into(), "B".into()), ("aws_secret_access_key".into(), "S".into())]
        );
        assert_eq!(profile_section(text, "default").len(), 1);
        assert!(profile_section(text, "none").is_empty());
    }

    #[test]
    fn bad_addresses_are_refused_with_what_to_give() {
        for bad in ["s3://", "s3://Upper/p", "s3://b/a//c", "s3://b/../x", "file:///x"] {
            let err = S3::from_url(bad).err().expect(bad);
            assert_eq!(err.exit_code(), 2, "{bad}: {err}");
        }
    }
}
