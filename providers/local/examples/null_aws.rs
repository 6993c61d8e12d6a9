//! A null AWS server for benchmarks: answers every SNS query-protocol request with a canned
//! response (no signature check, no state), so that a client's loop against it measures the
//! client's own ceiling. `scripts/bench-sns.sh` runs the same boto3 script against it, the
//! local cloud and moto server.
//!
//! Usage: `null_aws` — listens on 127.0.0.1 (a free port) and prints the port on stdout.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

const XMLNS: &str = "http://sns.amazonaws.com/doc/2010-03-31/";
const RID: &str = "00000000-0000-4000-8000-000000000000";

fn answer(action: &str) -> String {
    let inner = match action {
        "CreateTopic" => "<TopicArn>arn:aws:sns:us-east-1:000000000000:bench</TopicArn>".to_string(),
        "Publish" => "<MessageId>00000000-0000-4000-8000-000000000001</MessageId>".to_string(),
        _ => String::new(),
    };
    format!(
        "<{action}Response xmlns=\"{XMLNS}\"><{action}Result>{inner}</{action}Result>\
         <ResponseMetadata><RequestId>{RID}</RequestId></ResponseMetadata></{action}Response>"
    )
}

async fn serve(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let text = String::from_utf8_lossy(&body);
    let action = text.split('&').find_map(|p| p.strip_prefix("Action=")).unwrap_or("Publish").to_string();
    let mut r = Response::new(Full::new(Bytes::from(answer(&action))));
    r.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("text/xml"));
    r.headers_mut().insert("x-amzn-requestid", hyper::header::HeaderValue::from_static(RID));
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
