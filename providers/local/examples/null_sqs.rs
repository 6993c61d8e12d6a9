//! A null SQS server for benchmarks: answers SQS JSON-protocol requests with canned responses
//! (no signature check, no state), so that a client's loop against it measures the client's
//! own ceiling. `scripts/bench-sqs.sh` runs `sqs_bench.py` against it, the local cloud and moto.
//!
//! The answers are canned but must pass boto3's checks: `SendMessage` carries the MD5s of the
//! benchmark's fixed message (100 × `x`, one `String` attribute `kind` = `bench`), and
//! `ReceiveMessage` always returns that message.
//!
//! Usage: `null_sqs` — listens on 127.0.0.1 (a free port) and prints the port on stdout.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::OnceLock;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use skyform_local::queue::{MessageAttribute, md5_attributes, md5_hex};

struct Canned {
    create: Bytes,
    send: Bytes,
    batch: Bytes,
    receive: Bytes,
    empty: Bytes,
}

fn canned() -> &'static Canned {
    static C: OnceLock<Canned> = OnceLock::new();
    C.get_or_init(|| {
        let body = "x".repeat(100);
        let mut attrs = BTreeMap::new();
        attrs.insert(
            "kind".to_string(),
            MessageAttribute { data_type: "String".into(), string_value: Some("bench".into()), binary_value: None },
        );
        let md5 = md5_hex(body.as_bytes());
        let md5a = md5_attributes(&attrs).unwrap();
        let url = "http://127.0.0.1/000000000000/bench";
        let entries: Vec<serde_json::Value> = (0..10)
            .map(|i| serde_json::json!({"Id": i.to_string(), "MessageId": "00000000-0000-4000-8000-000000000001", "MD5OfMessageBody": md5}))
            .collect();
        Canned {
            create: serde_json::json!({ "QueueUrl": url }).to_string().into(),
            send: serde_json::json!({"MessageId": "00000000-0000-4000-8000-000000000001", "MD5OfMessageBody": md5, "MD5OfMessageAttributes": md5a}).to_string().into(),
            batch: serde_json::json!({"Successful": entries, "Failed": []}).to_string().into(),
            receive: serde_json::json!({"Messages": [{"MessageId": "00000000-0000-4000-8000-000000000001", "ReceiptHandle": "handle", "MD5OfBody": md5, "Body": body}]}).to_string().into(),
            empty: Bytes::from_static(b"{}"),
        }
    })
}

async fn serve(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let target = req.headers().get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let _ = req.into_body().collect().await;
    let c = canned();
    let body = match target.strip_prefix("AmazonSQS.").unwrap_or("") {
        "CreateQueue" | "GetQueueUrl" => c.create.clone(),
        "SendMessage" => c.send.clone(),
        "SendMessageBatch" => c.batch.clone(),
        "ReceiveMessage" => c.receive.clone(),
        _ => c.empty.clone(),
    };
    let mut r = Response::new(Full::new(body));
    r.headers_mut()
        .insert("content-type", hyper::header::HeaderValue::from_static("application/x-amz-json-1.0"));
    r.headers_mut().insert(
        "x-amzn-requestid",
        hyper::header::HeaderValue::from_static("00000000-0000-4000-8000-000000000000"),
    );
    Ok(r)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1");
    println!("{}", listener.local_addr().expect("local address").port());
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), hyper::service::service_fn(serve))
                .await;
        });
    }
}
