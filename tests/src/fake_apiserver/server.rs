//! The HTTP side of the fake API server: the accept loop, request recording, injected failures,
//! and the translation of Kubernetes REST verbs into store operations.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::error::FakeApiServerError;
use super::path::ResourcePath;
use super::selector::Selectors;
use super::store::{Scope, StatusOnCreate, UpdateScope, WatchStart};
use super::{RecordedRequest, Shared};

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Accepts connections until the task is aborted; the connections live in a `JoinSet` owned
/// by this task, so aborting it also ends every open connection, long-running watches included.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let shared = Arc::clone(&shared);
                    connections.spawn(async move {
                        let service = service_fn(move |request| handle(Arc::clone(&shared), request));
                        if let Err(error) = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await
                        {
                            tracing::debug!(%error, "fake API server connection ended with an error");
                        }
                    });
                }
                Err(error) => {
                    tracing::warn!(%error, "fake API server could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body_bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            return Ok(error_response(&FakeApiServerError::BadRequest(format!(
                "could not read the request body: {error}"
            ))));
        }
    };
    let parsed_body = if body_bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(None)
    } else {
        serde_json::from_slice::<Value>(&body_bytes).map(Some)
    };
    shared.record(RecordedRequest {
        method: parts.method.clone(),
        path: path.clone(),
        query: query.clone(),
        content_type: content_type.clone(),
        body: parsed_body.as_ref().ok().cloned().flatten(),
    });
    if let Some(status) = shared.take_injected_failure(&parts.method, &path) {
        return Ok(error_response(&FakeApiServerError::Injected {
            method: parts.method.to_string(),
            path,
            status,
        }));
    }
    let body = match parsed_body {
        Ok(body) => body,
        Err(error) => {
            return Ok(error_response(&FakeApiServerError::BadRequest(format!(
                "the request body is not valid JSON (the fake API server accepts JSON only, also for apply patches): {error}"
            ))));
        }
    };
    let request = ApiRequest {
        method: parts.method,
        query: form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect(),
        content_type,
        body,
    };
    let response = match ResourcePath::parse(&path) {
        Ok(resource_path) => route(&shared, &resource_path, request),
        Err(error) => Err(error),
    };
    Ok(response.unwrap_or_else(|error| error_response(&error)))
}

struct ApiRequest {
    method: Method,
    query: HashMap<String, String>,
    content_type: Option<String>,
    body: Option<Value>,
}

impl ApiRequest {
    fn flag(&self, name: &str) -> bool {
        matches!(self.query.get(name).map(String::as_str), Some("true" | "1"))
    }

    fn body(&self) -> Result<Value, FakeApiServerError> {
        self.body.clone().ok_or_else(|| {
            FakeApiServerError::BadRequest("the request needs a JSON body".to_owned())
        })
    }

    fn selectors(&self) -> Result<Selectors, FakeApiServerError> {
        Selectors::parse(
            self.query.get("labelSelector").map(String::as_str),
            self.query.get("fieldSelector").map(String::as_str),
        )
    }
}

fn route(
    shared: &Shared,
    path: &ResourcePath,
    request: ApiRequest,
) -> Result<Response<Body>, FakeApiServerError> {
    let subresource_scope = match path.subresource.as_deref() {
        None => UpdateScope::Main,
        Some("status") => UpdateScope::Status,
        Some(other) => {
            return Err(FakeApiServerError::PathNotServed {
                path: format!("the {other} subresource"),
            });
        }
    };
    let method = request.method.clone();
    match (method, path.object_key()) {
        (Method::GET, _) if request.flag("watch") => watch(shared, path, &request),
        (Method::GET, Some(key)) => shared
            .read_store(|store| store.get(&key).cloned())
            .map(|object| json_response(StatusCode::OK, &object))
            .ok_or(FakeApiServerError::NotFound {
                plural: key.resource.plural,
                name: key.name,
            }),
        (Method::GET, None) => list(shared, path, &request),
        (Method::POST, None) => {
            let body = request.body()?;
            let created =
                shared.with_store(|store| store.create(path, body, StatusOnCreate::Drop))?;
            Ok(json_response(StatusCode::CREATED, &created))
        }
        (Method::PATCH, Some(key)) => {
            let patch = request.body()?;
            let patch_type = PatchType::from_content_type(request.content_type.as_deref())?;
            if patch_type == PatchType::Apply {
                let manager = request
                    .query
                    .get("fieldManager")
                    .filter(|manager| !manager.is_empty())
                    .ok_or_else(|| {
                        FakeApiServerError::BadRequest(
                            "fieldManager is required for apply patches".to_owned(),
                        )
                    })?;
                let force = request.flag("force");
                let (applied, created) = shared.with_store(|store| {
                    store.apply(path, &key, subresource_scope, manager, force, &patch)
                })?;
                let status = if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                };
                return Ok(json_response(status, &applied));
            }
            let patched = shared.with_store(|store| {
                store.update(&key, subresource_scope, |stored| {
                    Ok(merge_patch(stored, &patch))
                })
            })?;
            Ok(json_response(StatusCode::OK, &patched))
        }
        (Method::DELETE, Some(key)) if path.subresource.is_none() => {
            let cascade = cascades(request.body.as_ref());
            let deleted = shared.with_store(|store| store.delete(&key, cascade))?;
            Ok(json_response(StatusCode::OK, &deleted))
        }
        // Replace (PUT) and delete-collection are not modelled: no test needs them.
        (method, _) => Err(FakeApiServerError::MethodNotAllowed(format!(
            "{method} on {}",
            if path.name.is_some() {
                "an object"
            } else {
                "a collection"
            }
        ))),
    }
}

/// `propagationPolicy: Orphan` keeps the dependents; every other policy deletes them.
fn cascades(delete_options: Option<&Value>) -> bool {
    delete_options
        .and_then(|options| options.get("propagationPolicy"))
        .and_then(Value::as_str)
        != Some("Orphan")
}

fn list_scope(path: &ResourcePath, request: &ApiRequest) -> Result<Scope, FakeApiServerError> {
    Ok(Scope {
        resource: path.resource.clone(),
        namespace: path.namespace.clone(),
        name: path.name.clone(),
        selectors: request.selectors()?,
    })
}

/// Lists ignore `limit` and `continue`: everything is returned in one page without a continue
/// token, which is a valid answer to a paginated request.
fn list(
    shared: &Shared,
    path: &ResourcePath,
    request: &ApiRequest,
) -> Result<Response<Body>, FakeApiServerError> {
    let scope = list_scope(path, request)?;
    let body = shared.read_store(|store| {
        list_body(
            store.kind_of(&path.resource),
            path,
            store.resource_version(),
            store.list(&scope),
        )
    });
    Ok(json_response(StatusCode::OK, &body))
}

fn list_body(
    kind: Option<&str>,
    path: &ResourcePath,
    resource_version: u64,
    items: Vec<Value>,
) -> Value {
    json!({
        "kind": kind.map_or_else(|| "List".to_owned(), |kind| format!("{kind}List")),
        "apiVersion": path.api_version,
        "metadata": { "resourceVersion": resource_version.to_string() },
        "items": items,
    })
}

fn watch(
    shared: &Shared,
    path: &ResourcePath,
    request: &ApiRequest,
) -> Result<Response<Body>, FakeApiServerError> {
    let scope = list_scope(path, request)?;
    if request.flag("sendInitialEvents") {
        return Err(FakeApiServerError::NotModelled(
            "streaming lists (sendInitialEvents)",
        ));
    }
    let start = match request.query.get("resourceVersion").map(String::as_str) {
        None | Some("" | "0") => WatchStart::CurrentState,
        Some(version) => WatchStart::After(version.parse().map_err(|_| {
            FakeApiServerError::BadRequest(format!(
                "resourceVersion {version:?} is not a resource version"
            ))
        })?),
    };
    let timeout = match request.query.get("timeoutSeconds") {
        Some(seconds) => Some(Duration::from_secs(seconds.parse().map_err(|_| {
            FakeApiServerError::BadRequest(format!(
                "timeoutSeconds {seconds:?} is not a number of seconds"
            ))
        })?)),
        None => None,
    };
    let subscription = shared.read_store(|store| store.subscribe(scope, start));
    let live = futures::stream::unfold(subscription.live, |mut live| async move {
        live.recv().await.map(|event| (event, live))
    });
    let events = futures::stream::iter(subscription.backlog).chain(live);
    let events = match timeout {
        Some(timeout) => events.take_until(tokio::time::sleep(timeout)).boxed(),
        None => events.boxed(),
    };
    let frames = events.map(|event| {
        let mut line = event.to_string().into_bytes();
        line.push(b'\n');
        Ok::<_, Infallible>(Frame::data(Bytes::from(line)))
    });
    let mut response = Response::new(BodyExt::boxed_unsync(StreamBody::new(frames)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PatchType {
    Apply,
    Merge,
}

impl PatchType {
    fn from_content_type(content_type: Option<&str>) -> Result<Self, FakeApiServerError> {
        let media_type = content_type
            .and_then(|value| value.split(';').next())
            .map(str::trim)
            .unwrap_or_default();
        match media_type {
            "application/apply-patch+yaml" => Ok(Self::Apply),
            // A strategic merge patch is treated as a JSON merge patch: without schemas the
            // fake does not know which lists merge by key.
            "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                Ok(Self::Merge)
            }
            "application/json-patch+json" => Err(FakeApiServerError::NotModelled("JSON patches")),
            other => Err(FakeApiServerError::UnsupportedMediaType(format!(
                "patches of content type {other:?}"
            ))),
        }
    }
}

/// A JSON merge patch applied to `stored` (apply patches go through the store's field manager
/// model instead).
fn merge_patch(stored: &Value, patch: &Value) -> Value {
    let mut patched = stored.clone();
    json_patch::merge(&mut patched, patch);
    patched
}

fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let mut response = Response::new(BodyExt::boxed_unsync(Full::new(Bytes::from(
        value.to_string(),
    ))));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn error_response(error: &FakeApiServerError) -> Response<Body> {
    let status = StatusCode::from_u16(error.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, &error.to_status())
}
