//! One export over wasi:http/outgoing-handler, driven step by step without
//! blocking, so that every request of a flush and the flush's deadline share
//! one wait.

use base64::Engine as _;
use wasi::http::outgoing_handler;
use wasi::http::types::{
    Fields, FutureIncomingResponse, IncomingBody, IncomingResponse, Method, OutgoingBody, OutgoingRequest, Scheme,
};
use wasi::io::poll::Pollable;
use wasi::io::streams::{InputStream, OutputStream, StreamError};

use crate::secret::Secret;

/// Only partial_success and per-item errors are read from a response body;
/// hosts may stop reading here too.
const MAX_RESPONSE_BODY: usize = 64 << 10;

/// How an export ended, as the pipeline takes it.
pub(super) enum Answer {
    Response { status: u16, retry_after: Option<String>, headers: Vec<(String, String)>, body: Vec<u8> },
    Failed(String),
}

pub(super) enum Progress {
    Waiting,
    Done(Answer),
}

pub(super) struct InFlight {
    id: u64,
    /// Monotonic: when the export's own timeout runs out.
    deadline: u64,
    timeout_ms: u32,
    /// Taken while it moves on to the next stage; never None between calls.
    stage: Option<Stage>,
}

enum Stage {
    /// Writing the request body; the response is not looked at before it is written.
    Sending {
        upload: Upload,
        response: FutureIncomingResponse,
    },
    Waiting(FutureIncomingResponse),
    Reading(Download),
}

/// A stream must go before the body it belongs to is finished or dropped.
struct Upload {
    stream: Option<OutputStream>,
    body: Option<OutgoingBody>,
    data: Vec<u8>,
    written: usize,
    flushing: bool,
}

/// Fields in drop order: the stream, then its body, then the response.
struct Download {
    stream: InputStream,
    _body: IncomingBody,
    _response: IncomingResponse,
    status: u16,
    headers: Vec<(String, String)>,
    data: Vec<u8>,
}

impl InFlight {
    /// Starts a POST of `body` (base64) to `url`. Errors never name the URL
    /// or a header's value: either may carry a credential.
    pub(super) fn start(
        id: u64,
        url: &str,
        headers: &[(String, Secret)],
        body: &str,
        timeout_ms: u32,
    ) -> Result<InFlight, String> {
        let data = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|_| "the export body is not base64".to_string())?;
        let (scheme, authority, path) = split_url(url)?;
        let mut fields: Vec<(String, Vec<u8>)> =
            headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.expose().as_bytes().to_vec())).collect();
        // A sized body, not a chunked one: some receivers read Content-Length only.
        fields.push(("content-length".into(), data.len().to_string().into_bytes()));
        let fields = Fields::from_list(&fields).map_err(|e| format!("the runtime refused a request header ({e:?})"))?;
        let request = OutgoingRequest::new(fields);
        let refused = |what: &str| format!("the runtime refused the request's {what}");
        request.set_method(&Method::Post).map_err(|_| refused("method"))?;
        request.set_scheme(Some(&scheme)).map_err(|_| refused("scheme"))?;
        request.set_authority(Some(authority)).map_err(|_| refused("authority"))?;
        request.set_path_with_query(Some(path)).map_err(|_| refused("path"))?;
        let outgoing = request.body().map_err(|_| refused("body"))?;
        let stream = outgoing.write().map_err(|_| refused("body"))?;
        let response = outgoing_handler::handle(request, None).map_err(|e| format!("the request failed ({e:?})"))?;
        let deadline = if timeout_ms == u32::MAX { u64::MAX } else { super::clock::after_ms(timeout_ms) };
        let upload = Upload { stream: Some(stream), body: Some(outgoing), data, written: 0, flushing: false };
        Ok(InFlight { id, deadline, timeout_ms, stage: Some(Stage::Sending { upload, response }) })
    }

    pub(super) fn id(&self) -> u64 {
        self.id
    }

    pub(super) fn deadline(&self) -> u64 {
        self.deadline
    }

    /// Ready when this request can make progress.
    pub(super) fn subscribe(&self) -> Pollable {
        match &self.stage {
            Some(Stage::Sending { upload: Upload { stream: Some(stream), .. }, .. }) => stream.subscribe(),
            Some(Stage::Waiting(response)) => response.subscribe(),
            Some(Stage::Reading(download)) => download.stream.subscribe(),
            // Nothing to wait for: the next `advance` moves on.
            _ => wasi::clocks::monotonic_clock::subscribe_duration(0),
        }
    }

    /// Does what can be done without waiting.
    pub(super) fn advance(&mut self, now: u64) -> Progress {
        loop {
            if now >= self.deadline {
                return Progress::Done(Answer::Failed(format!("no response within {} ms", self.timeout_ms)));
            }
            let Some(stage) = self.stage.take() else {
                return Progress::Done(Answer::Failed("the request was lost".into()));
            };
            let (next, progress) = match stage {
                Stage::Sending { mut upload, response } => match upload.advance() {
                    // The body went out, or could not (the answer will say why).
                    true => (Stage::Waiting(response), None),
                    false => (Stage::Sending { upload, response }, Some(Progress::Waiting)),
                },
                Stage::Waiting(response) => match response.get() {
                    None => (Stage::Waiting(response), Some(Progress::Waiting)),
                    Some(Ok(Ok(answer))) => match Download::start(answer) {
                        Ok(download) => (Stage::Reading(download), None),
                        Err(why) => return Progress::Done(Answer::Failed(why)),
                    },
                    Some(Ok(Err(code))) => return Progress::Done(Answer::Failed(format!("{code:?}"))),
                    Some(Err(())) => return Progress::Done(Answer::Failed("the response was taken twice".into())),
                },
                Stage::Reading(mut download) => match download.advance() {
                    true => return Progress::Done(download.finish()),
                    false => (Stage::Reading(download), Some(Progress::Waiting)),
                },
            };
            self.stage = Some(next);
            if let Some(progress) = progress {
                return progress;
            }
        }
    }
}

impl Upload {
    /// True once the body is written and finished, or cannot be.
    fn advance(&mut self) -> bool {
        if let Some(stream) = self.stream.take() {
            if !self.write(&stream) {
                self.stream = Some(stream);
                return false;
            }
            // The stream goes first: finishing a body with a live stream traps.
            drop(stream);
        }
        if let Some(body) = self.body.take() {
            // A finish that fails shows in the response.
            let _ = OutgoingBody::finish(body, None);
        }
        true
    }

    /// Writes what the stream takes; true once all is written and flushed,
    /// or the stream failed.
    fn write(&mut self, stream: &OutputStream) -> bool {
        loop {
            let permitted = match stream.check_write() {
                Ok(n) => n,
                Err(_) => return true,
            };
            if self.written == self.data.len() {
                if !self.flushing {
                    if stream.flush().is_err() {
                        return true;
                    }
                    self.flushing = true;
                    continue;
                }
                // check-write answers 0 until a flush completes.
                return permitted > 0;
            }
            if permitted == 0 {
                return false;
            }
            let n = usize::try_from(permitted).unwrap_or(usize::MAX).min(self.data.len() - self.written);
            if stream.write(&self.data[self.written..self.written + n]).is_err() {
                return true;
            }
            self.written += n;
        }
    }
}

impl Download {
    fn start(response: IncomingResponse) -> Result<Download, String> {
        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), String::from_utf8_lossy(&v).into_owned()))
            .collect();
        let body = response.consume().map_err(|_| "the response body was taken twice".to_string())?;
        let stream = body.stream().map_err(|_| "the response body stream was taken twice".to_string())?;
        Ok(Download { stream, _body: body, _response: response, status, headers, data: Vec::new() })
    }

    /// True once the body has ended or enough of it is read.
    fn advance(&mut self) -> bool {
        loop {
            let room = MAX_RESPONSE_BODY - self.data.len();
            match self.stream.read(room as u64) {
                Ok(bytes) if bytes.is_empty() => return false,
                Ok(bytes) => {
                    self.data.extend_from_slice(&bytes);
                    if self.data.len() >= MAX_RESPONSE_BODY {
                        return true;
                    }
                }
                // Closed, or failed: the status is known, the body is what came.
                Err(StreamError::Closed) | Err(StreamError::LastOperationFailed(_)) => return true,
            }
        }
    }

    fn finish(self) -> Answer {
        let retry_after = self.headers.iter().find(|(k, _)| k == "retry-after").map(|(_, v)| v.clone());
        Answer::Response { status: self.status, retry_after, headers: self.headers, body: self.data }
    }
}

/// An export URL's scheme, authority and path with query.
fn split_url(url: &str) -> Result<(Scheme, &str, &str), String> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else {
        return Err("the export URL is neither http nor https".into());
    };
    Ok(match rest.find('/') {
        Some(i) => (scheme, &rest[..i], &rest[i..]),
        None => (scheme, rest, "/"),
    })
}

/// The console backend: the body is text, written to wasi:cli/stdout.
pub(super) fn to_stdout(text: &str) {
    let stdout = wasi::cli::stdout::get_stdout();
    // blocking-write-and-flush takes at most 4096 bytes a call.
    for chunk in text.as_bytes().chunks(4096) {
        if stdout.blocking_write_and_flush(chunk).is_err() {
            return;
        }
    }
}
