//! `serve()`: the provider side of the protocol, so that a provider author writes only the
//! resource logic.
//!
//! The loop reads requests from stdin, answers `handshake` itself from [`Provider::schemas`],
//! and runs every other request as its own task, so that slow creates do not hold up quick
//! checks. Responses are written to stdout by a single writer task, one line each; the writer
//! flushes only when it has nothing more queued, so a burst of answers costs one write.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::*;

/// An error a provider method returns; it becomes the response's `error`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderError {
    pub code: ErrorCode,
    pub message: String,
}

impl ProviderError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ProviderError { code, message: message.into() }
    }
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Failed, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }
    pub fn invalid_inputs(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInputs, message)
    }
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unsupported, message)
    }
    pub fn configuration(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Configuration, message)
    }
}

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ProviderError {}

pub type Result<T> = std::result::Result<T, ProviderError>;

/// The resource logic of a provider. Implement it with `async fn`s; [`serve`] does the rest.
pub trait Provider: Send + Sync + 'static {
    /// The provider's name: the first segment of its type tokens.
    fn name(&self) -> String;
    fn version(&self) -> String;
    /// The resource types it serves, by type token.
    fn schemas(&self) -> BTreeMap<String, ResourceSchema>;

    fn configure(&self, _req: ConfigureRequest) -> impl Future<Output = Result<ConfigureResponse>> + Send {
        async { Ok(ConfigureResponse {}) }
    }

    /// Validates inputs and fills defaults. The default accepts the inputs as they are.
    fn check(&self, req: CheckRequest) -> impl Future<Output = Result<CheckResponse>> + Send {
        async move { Ok(CheckResponse { inputs: req.inputs, failures: Vec::new() }) }
    }

    /// Compares inputs. Returning `Ok(None)` (the default) asks `serve` for
    /// [`default_diff`] with the type's `replace_on_changes`.
    fn diff(&self, _req: DiffRequest) -> impl Future<Output = Result<Option<DiffResponse>>> + Send {
        async { Ok(None) }
    }

    fn create(&self, req: CreateRequest) -> impl Future<Output = Result<CreateResponse>> + Send;
    fn read(&self, req: ReadRequest) -> impl Future<Output = Result<ReadResponse>> + Send;
    fn update(&self, req: UpdateRequest) -> impl Future<Output = Result<UpdateResponse>> + Send;
    fn delete(&self, req: DeleteRequest) -> impl Future<Output = Result<DeleteResponse>> + Send;
}

/// Serves the protocol on stdin/stdout until stdin closes, then waits for the requests in
/// flight to finish.
pub async fn serve<P: Provider>(provider: P) -> std::io::Result<()> {
    serve_io(provider, tokio::io::stdin(), tokio::io::stdout()).await
}

/// [`serve`] over any byte streams: requests are read from `input`, answers written to
/// `output`. The engine uses it to run a provider in its own process (tests, embedding) over
/// an in-memory pipe, through exactly the code path a provider process runs.
pub async fn serve_io<P, R, W>(provider: P, input: R, output: W) -> std::io::Result<()>
where
    P: Provider,
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
    W: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let provider = Arc::new(provider);
    let schemas = Arc::new(provider.schemas());
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();

    let writer = tokio::spawn(async move {
        let mut out = BufWriter::new(output);
        while let Some(line) = rx.recv().await {
            out.write_all(line.as_bytes()).await?;
            while let Ok(more) = rx.try_recv() {
                out.write_all(more.as_bytes()).await?;
            }
            out.flush().await?;
        }
        out.flush().await
    });

    let mut lines = BufReader::new(input).lines();
    let mut tasks = JoinSet::new();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        // Reap finished tasks so the set does not grow without bound.
        while tasks.try_join_next().is_some() {}
        let request: Request = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                let id = serde_json::from_str::<Value>(&line)
                    .ok()
                    .and_then(|v| v.get("id").and_then(Value::as_u64))
                    .unwrap_or(0);
                let err = ProviderError::new(ErrorCode::BadRequest, format!("malformed request: {e}"));
                let _ = tx.send(encode(id, Err::<(), _>(err)));
                continue;
            }
        };
        let id = request.id;
        if let Call::Handshake(h) = &request.call {
            let answer = if h.protocol_versions.contains(&PROTOCOL_VERSION) {
                Ok(HandshakeResponse {
                    protocol_version: PROTOCOL_VERSION,
                    name: provider.name(),
                    version: provider.version(),
                    resources: (*schemas).clone(),
                })
            } else {
                Err(ProviderError::unsupported(format!(
                    "this provider speaks protocol version {PROTOCOL_VERSION}, the engine offered {:?}",
                    h.protocol_versions
                )))
            };
            let _ = tx.send(encode(id, answer));
            continue;
        }
        let provider = provider.clone();
        let schemas = schemas.clone();
        let tx = tx.clone();
        tasks.spawn(async move {
            // The work runs in a task of its own so that a panic in the provider's code becomes
            // a `failed` answer instead of a request the engine waits on forever.
            let method = request.call.method();
            let work = tokio::spawn(async move { dispatch(&*provider, &schemas, id, request.call).await });
            let line = match work.await {
                Ok(line) => line,
                Err(e) => encode(
                    id,
                    Err::<(), _>(ProviderError::failed(format!(
                        "the provider panicked while handling `{method}`: {e}"
                    ))),
                ),
            };
            let _ = tx.send(line);
        });
    }
    while tasks.join_next().await.is_some() {}
    drop(tx);
    writer.await.map_err(std::io::Error::other)?
}

/// [`serve`] on a runtime of its own, for a provider's `main`.
pub fn serve_blocking<P: Provider>(provider: P) -> std::io::Result<()> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(serve(provider))
}

async fn dispatch<P: Provider>(
    provider: &P,
    schemas: &BTreeMap<String, ResourceSchema>,
    id: u64,
    call: Call,
) -> String {
    let known = |t: &str| -> Result<()> {
        if schemas.contains_key(t) {
            Ok(())
        } else {
            Err(ProviderError::unsupported(format!(
                "provider `{}` has no resource type `{t}`; it serves: {}",
                provider.name(),
                schemas.keys().cloned().collect::<Vec<_>>().join(", ")
            )))
        }
    };
    match call {
        Call::Handshake(_) => unreachable!("answered by the serve loop"),
        Call::Configure(req) => encode(id, provider.configure(req).await),
        Call::Check(req) => match known(&req.type_) {
            Ok(()) => encode(id, provider.check(req).await),
            Err(e) => encode(id, Err::<(), _>(e)),
        },
        Call::Diff(req) => {
            if let Err(e) = known(&req.type_) {
                return encode(id, Err::<(), _>(e));
            }
            let replace_on =
                schemas.get(&req.type_).map(|s| s.replace_on_changes.clone()).unwrap_or_default();
            let (olds, news) = (req.olds.clone(), req.news.clone());
            let answer = provider
                .diff(req)
                .await
                .map(|d| d.unwrap_or_else(|| default_diff(&olds, &news, &replace_on)));
            encode(id, answer)
        }
        Call::Create(req) => match known(&req.type_) {
            Ok(()) => encode(id, provider.create(req).await),
            Err(e) => encode(id, Err::<(), _>(e)),
        },
        Call::Read(req) => match known(&req.type_) {
            Ok(()) => encode(id, provider.read(req).await),
            Err(e) => encode(id, Err::<(), _>(e)),
        },
        Call::Update(req) => match known(&req.type_) {
            Ok(()) => encode(id, provider.update(req).await),
            Err(e) => encode(id, Err::<(), _>(e)),
        },
        Call::Delete(req) => match known(&req.type_) {
            Ok(()) => encode(id, provider.delete(req).await),
            Err(e) => encode(id, Err::<(), _>(e)),
        },
    }
}

/// One response line, newline included.
fn encode<T: Serialize>(id: u64, answer: Result<T>) -> String {
    let response = match answer {
        Ok(result) => match serde_json::to_value(result) {
            Ok(v) => Response { id, result: Some(v), error: None },
            Err(e) => Response {
                id,
                result: None,
                error: Some(ErrorBody {
                    code: ErrorCode::Failed,
                    message: format!("cannot encode result: {e}"),
                }),
            },
        },
        Err(e) => Response { id, result: None, error: Some(ErrorBody { code: e.code, message: e.message }) },
    };
    let mut line = serde_json::to_string(&response).expect("a response always serializes");
    line.push('\n');
    line
}
