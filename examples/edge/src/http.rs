//! The little of wasi:http the example needs: headers, a response, a GET.

use wasi::http::outgoing_handler;
use wasi::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, OutgoingResponse, ResponseOutparam, Scheme};
use wasi::io::streams::StreamError;

pub fn headers(fields: &Fields) -> Vec<(String, String)> {
    fields.entries().into_iter().map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned())).collect()
}

pub fn method_name(method: &Method) -> String {
    match method {
        Method::Get => "GET".into(),
        Method::Head => "HEAD".into(),
        Method::Post => "POST".into(),
        Method::Put => "PUT".into(),
        Method::Delete => "DELETE".into(),
        Method::Connect => "CONNECT".into(),
        Method::Options => "OPTIONS".into(),
        Method::Trace => "TRACE".into(),
        Method::Patch => "PATCH".into(),
        Method::Other(m) => m.clone(),
    }
}

/// Sends the whole response; it is complete when this returns.
pub fn respond(out: ResponseOutparam, status: u16, body: &str) {
    let fields = Fields::from_list(&[("content-type".to_owned(), b"text/plain; charset=utf-8".to_vec())])
        .unwrap_or_else(|_| Fields::new());
    let response = OutgoingResponse::new(fields);
    let _ = response.set_status_code(status);
    let Ok(outgoing) = response.body() else { return };
    ResponseOutparam::set(out, Ok(response));
    if let Ok(stream) = outgoing.write() {
        for chunk in body.as_bytes().chunks(4096) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                break;
            }
        }
    }
    let _ = OutgoingBody::finish(outgoing, None);
}

/// A GET with extra headers; the status and the body as text.
pub fn get(url: &str, extra: &[(String, String)]) -> Result<(u16, String), String> {
    let (scheme, rest) = match url.split_once("://") {
        Some(("http", rest)) => (Scheme::Http, rest),
        Some(("https", rest)) => (Scheme::Https, rest),
        _ => return Err(format!("not an http URL: {url}")),
    };
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    let fields: Vec<(String, Vec<u8>)> = extra.iter().map(|(k, v)| (k.clone(), v.clone().into_bytes())).collect();
    let request = OutgoingRequest::new(Fields::from_list(&fields).map_err(|e| format!("{e:?}"))?);
    let _ = request.set_scheme(Some(&scheme));
    let _ = request.set_authority(Some(authority));
    let _ = request.set_path_with_query(Some(path));
    let body = request.body().map_err(|()| "no request body".to_owned())?;
    let pending = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    OutgoingBody::finish(body, None).map_err(|e| format!("{e:?}"))?;
    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(format!("{code:?}")),
        _ => return Err("no response".into()),
    };
    let status = response.status();
    let incoming = response.consume().map_err(|()| "no response body".to_owned())?;
    let mut text = Vec::new();
    {
        let stream = incoming.stream().map_err(|()| "no response body".to_owned())?;
        loop {
            match stream.blocking_read(64 << 10) {
                Ok(bytes) => text.extend_from_slice(&bytes),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => return Err(e.to_debug_string()),
            }
        }
    }
    Ok((status, String::from_utf8_lossy(&text).into_owned()))
}
