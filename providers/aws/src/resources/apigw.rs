//! API Gateway v2 (REST-JSON, HTTP APIs): `aws:apigatewayv2:Api`, `Integration`, `Route` and
//! `Stage`. Children's ids are `API_ID/CHILD_ID` (a stage's child id is its name), since
//! every call about them names the API too.

use reqwest::Method;
use serde_json::{Map, Value, json};
use skyform_protocol::ProviderError;

use crate::http::{Error, Result};
use crate::resource::{Created, Ctx, Found, Kind, NAME, Spec};
use crate::sigv4::uri_encode;
use crate::util::{Inputs, set};

async fn apigw(ctx: &Ctx, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
    ctx.aws.rest("apigateway", method, path, body).await
}

fn api_path(api: &str) -> String {
    format!("/v2/apis/{}", uri_encode(api))
}

fn split(id: &str) -> Result<(String, String)> {
    id.split_once('/').map(|(a, b)| (a.to_string(), b.to_string())).ok_or_else(|| {
        Error::Provider(ProviderError::invalid_inputs(format!("`{id}` is not an `API_ID/ID` id")))
    })
}

fn stored_or_empty(stored: &Value) -> Value {
    if stored.is_object() { stored.clone() } else { json!({}) }
}

/// All items of a paginated list.
async fn list(ctx: &Ctx, path: &str) -> Result<Vec<Value>> {
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let q: Vec<(&str, &str)> = token.as_deref().map(|t| vec![("nextToken", t)]).unwrap_or_default();
        let v = ctx.aws.rest_query("apigateway", Method::GET, path, &q, None).await?;
        items.extend(v["items"].as_array().cloned().unwrap_or_default());
        match v["nextToken"].as_str() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(items),
        }
    }
}

// ---------------------------------------------------------------------------------------------

pub struct Api;

const CORS: &[(&str, &str)] = &[
    ("allow_origins", "allowOrigins"),
    ("allow_methods", "allowMethods"),
    ("allow_headers", "allowHeaders"),
    ("expose_headers", "exposeHeaders"),
    ("max_age", "maxAge"),
    ("allow_credentials", "allowCredentials"),
];

fn cors_to_aws(cors: &Map<String, Value>) -> Value {
    Value::Object(
        CORS.iter()
            .filter_map(|(ours, theirs)| cors.get(*ours).map(|v| (theirs.to_string(), v.clone())))
            .collect(),
    )
}

fn cors_from_aws(cors: &Value) -> Value {
    let Some(m) = cors.as_object() else { return Value::Null };
    let ours: Map<String, Value> = CORS
        .iter()
        .filter_map(|(ours, theirs)| {
            m.get(*theirs).filter(|v| !v.is_null()).map(|v| (ours.to_string(), v.clone()))
        })
        .collect();
    if ours.is_empty() { Value::Null } else { Value::Object(ours) }
}

async fn api_outputs(ctx: &Ctx, a: &Value) -> Result<Value> {
    let id = a["apiId"].as_str().unwrap_or_default();
    let account = ctx.aws.account_id().await?;
    Ok(json!({
        "id": id,
        "api_endpoint": a["apiEndpoint"],
        "execution_arn": format!("arn:aws:execute-api:{}:{account}:{id}", ctx.aws.region()),
    }))
}

impl Kind for Api {
    fn spec(&self) -> Spec {
        Spec {
            token: "aws:apigatewayv2:Api",
            description: "An API Gateway v2 HTTP API. Id: the API id.",
            properties: json!({
                "name": {"type": "string", "description": "The API name (not unique in AWS, so a rename is an update); generated when absent."},
                "protocol_type": {"type": "string", "default": "HTTP", "description": "`HTTP` (or `WEBSOCKET`)."},
                "description": {"type": "string", "description": "A description."},
                "cors": {"type": "object", "description": "CORS: `{allow_origins, allow_methods, allow_headers, expose_headers, max_age, allow_credentials}`."},
            }),
            required: &[],
            outputs: &["id", "api_endpoint", "execution_arn"],
            replace_on_changes: &["protocol_type"],
            identity: &[],
            name: Some(NAME),
            diff_ignore: &[],
        }
    }

    async fn create(&self, ctx: &Ctx, inputs: &Value) -> Result<Created> {
        let mut body = json!({"name": inputs["name"], "protocolType": inputs["protocol_type"]});
        set(&mut body, "description", inputs["description"].clone());
        if let Some(c) = inputs.obj_of("cors") {
            set(&mut body, "corsConfiguration", cors_to_aws(c));
        }
        let a = apigw(ctx, Method::POST, "/v2/apis", Some(body)).await?;
        let id = a["apiId"].as_str().unwrap_or_default().to_string();
        match api_outputs(ctx, &a).await {
            Ok(outputs) => Ok(Created { id, outputs }),
            Err(e) => {
                let _ = apigw(ctx, Method::DELETE, &api_path(&id), None).await;
                Err(e)
            }
        }
    }

    async fn find(&self, ctx: &Ctx, inputs: &Value) -> Result<Option<String>> {
        let Some(name) = inputs.str_of("name") else { return Ok(None) };
        let apis = list(ctx, "/v2/apis").await?;
        Ok(apis.iter().find(|a| a["name"] == name).and_then(|a| a["apiId"].as_str()).map(String::from))
    }

    async fn read(&self, ctx: &Ctx, id: &str, stored: &Value) -> Result<Option<Found>> {
        let a = apigw(ctx, Method::GET, &api_path(id), None).await?;
        let mut inputs = stored_or_empty(stored);
        set(&mut inputs, "name", a["name"].clone());
        set(&mut inputs, "protocol_type", a["protocolType"].clone());
        set(&mut inputs, "description", json!(a["description"].as_str().filter(|d| !d.is_empty())));
        set(&mut inputs, "cors", cors_from_aws(&a["corsConfiguration"]));
        Ok(Some(Found { inputs, outputs: api_outputs(ctx, &a).await? }))
    }

    async fn update(&self, ctx: &Ctx, id: &str, olds: &Value, news: &Value) -> Result<Value> {
        let mut body = json!({"name": news["name"], "description": news.str_of("description").unwrap_or("")});
        if let Some(c) = news.obj_of("cors") {
            set(&mut body, "corsConfiguration", cors_to_aws(c));
        } else if olds.has("cors") {
            apigw(ctx, Method::DELETE, &format!("{}/cors", api_path(id)), None).await?;
        }
        let a = apigw(ctx, Method::PATCH, &api_path(id), Some(body)).await?;
        api_outputs(ctx, &a).await
    }

    async fn delete(&self, ctx: &Ctx, id: &str, _inputs: &Value) -> Result<()> {
        apigw(ctx, Method::DELETE, &api_path(id), None).await?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------

pub struct Integration;

fn integration_body(inputs: &Value) -> Value {
    let mut b = json!({
        "integrationType": inputs["integration_type"],
        "integrationUri": inputs["integration_uri"],
        "payloadFormatVersion": inputs["payload_format_version"],
        "timeoutInMillis": inputs["timeout_milliseconds"],
    });
    set(&mut b, "integrationMethod", inputs["integration_method"].clone());
    b
}

fn integration_outputs(i: &Value) -> Value {
    let id = i["integrationId"].as_str().unwrap_or_default();
    json!({"integration_id": id, "target": format!("integrations/{id}")})
}

impl Kind for Integration {
    fn spec(&self) -> Spec {
        Spec {
            token: "aws:apigatewayv2:Integration",
            description: "Where an HTTP API sends requests, typically a Lambda function (`AWS_PROXY`). Id: `API_ID/INTEGRATION_ID`; \
                          a route's `target` is the `target` output.",
            properties: json!({
                "api_id": {"type": "string", "description": "The API's id."},
                "integration_type": {"type": "string", "default": "AWS_PROXY", "description": "`AWS_PROXY` (Lambda) or `HTTP_PROXY`."},
                "integration_uri": {"type": "string", "description": "The function's ARN (or an HTTP URL)."},
                "integration_method": {"type": "string", "description": "The method to call the integration with; `POST` for `AWS_PROXY`, required for `HTTP_PROXY`."},
                "payload_format_version": {"type": "string", "default": "2.0", "description": "`2.0` or `1.0`."},
                "timeout_milliseconds": {"type": "integer", "default": 30000, "description": "50-30000."},
            }),
            required: &["api_id", "integration_uri"],
            outputs: &["integration_id", "target"],
            replace_on_changes: &["api_id"],
            identity: &[],
            name: None,
            diff_ignore: &[],
        }
    }

    fn validate(
        &self,
        _ctx: &crate::resource::CheckCtx<'_>,
        inputs: &mut Map<String, Value>,
        failures: &mut Vec<skyform_protocol::CheckFailure>,
    ) {
        // Lambda proxy integrations are always called with POST; AWS reports it even when
        // not given, so it is filled in to avoid a phantom diff.
        match inputs.get("integration_type").and_then(Value::as_str) {
            Some("AWS_PROXY") => {
                inputs.entry("integration_method").or_insert(json!("POST"));
            }
            Some("HTTP_PROXY") if !inputs.contains_key("integration_method") => {
                failures.push(skyform_protocol::CheckFailure {
                    property: "integration_method".into(),
                    reason: "an HTTP_PROXY integration needs `integration_method` (GET, POST, ANY…)".into(),
                })
            }
            _ => {}
        }
    }

    async fn create(&self, ctx: &Ctx, inputs: &Value) -> Result<Created> {
        let api = inputs.str_of("api_id").unwrap_or_default();
        let i = apigw(
            ctx,
            Method::POST,
            &format!("{}/integrations", api_path(api)),
            Some(integration_body(inputs)),
        )
        .await?;
        let out = integration_outputs(&i);
        Ok(Created {
            id: format!("{api}/{}", out["integration_id"].as_str().unwrap_or_default()),
            outputs: out,
        })
    }

    async fn find(&self, ctx: &Ctx, inputs: &Value) -> Result<Option<String>> {
        let (Some(api), Some(uri)) = (inputs.str_of("api_id"), inputs.str_of("integration_uri")) else {
            return Ok(None);
        };
        let items = list(ctx, &format!("{}/integrations", api_path(api))).await?;
        Ok(items
            .iter()
            .find(|i| i["integrationUri"] == uri)
            .and_then(|i| i["integrationId"].as_str())
            .map(|i| format!("{api}/{i}")))
    }

    async fn read(&self, ctx: &Ctx, id: &str, stored: &Value) -> Result<Option<Found>> {
        let (api, iid) = split(id)?;
        let i =
            apigw(ctx, Method::GET, &format!("{}/integrations/{}", api_path(&api), uri_encode(&iid)), None)
                .await?;
        let mut inputs = stored_or_empty(stored);
        set(&mut inputs, "api_id", json!(api));
        set(&mut inputs, "integration_type", i["integrationType"].clone());
        set(&mut inputs, "integration_uri", i["integrationUri"].clone());
        set(&mut inputs, "integration_method", i["integrationMethod"].clone());
        set(&mut inputs, "payload_format_version", i["payloadFormatVersion"].clone());
        set(&mut inputs, "timeout_milliseconds", i["timeoutInMillis"].clone());
        Ok(Some(Found { inputs, outputs: integration_outputs(&i) }))
    }

    async fn update(&self, ctx: &Ctx, id: &str, _olds: &Value, news: &Value) -> Result<Value> {
        let (api, iid) = split(id)?;
        let path = format!("{}/integrations/{}", api_path(&api), uri_encode(&iid));
        let i = apigw(ctx, Method::PATCH, &path, Some(integration_body(news))).await?;
        Ok(integration_outputs(&i))
    }

    async fn delete(&self, ctx: &Ctx, id: &str, _inputs: &Value) -> Result<()> {
        let (api, iid) = split(id)?;
        apigw(ctx, Method::DELETE, &format!("{}/integrations/{}", api_path(&api), uri_encode(&iid)), None)
            .await?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------

pub struct Route;

fn route_body(inputs: &Value) -> Value {
    let mut b = json!({"routeKey": inputs["route_key"], "authorizationType": inputs["authorization_type"]});
    set(&mut b, "target", inputs["target"].clone());
    b
}

impl Kind for Route {
    fn spec(&self) -> Spec {
        Spec {
            token: "aws:apigatewayv2:Route",
            description: "A route of an HTTP API (`GET /hello/{name}`, `$default`). Id: `API_ID/ROUTE_ID`.",
            properties: json!({
                "api_id": {"type": "string", "description": "The API's id."},
                "route_key": {"type": "string", "description": "`METHOD /path` (`ANY` for every method) or `$default`."},
                "target": {"type": "string", "description": "`integrations/<id>`: an integration's `target` output."},
                "authorization_type": {"type": "string", "default": "NONE", "description": "`NONE`, `AWS_IAM`, `JWT` or `CUSTOM`."},
            }),
            required: &["api_id", "route_key"],
            outputs: &["route_id"],
            replace_on_changes: &["api_id"],
            identity: &["api_id", "route_key"],
            name: None,
            diff_ignore: &[],
        }
    }

    async fn create(&self, ctx: &Ctx, inputs: &Value) -> Result<Created> {
        let api = inputs.str_of("api_id").unwrap_or_default();
        let r =
            apigw(ctx, Method::POST, &format!("{}/routes", api_path(api)), Some(route_body(inputs))).await?;
        let rid = r["routeId"].as_str().unwrap_or_default();
        Ok(Created { id: format!("{api}/{rid}"), outputs: json!({"route_id": rid}) })
    }

    async fn find(&self, ctx: &Ctx, inputs: &Value) -> Result<Option<String>> {
        let (Some(api), Some(key)) = (inputs.str_of("api_id"), inputs.str_of("route_key")) else {
            return Ok(None);
        };
        let items = list(ctx, &format!("{}/routes", api_path(api))).await?;
        Ok(items
            .iter()
            .find(|r| r["routeKey"] == key)
            .and_then(|r| r["routeId"].as_str())
            .map(|r| format!("{api}/{r}")))
    }

    async fn read(&self, ctx: &Ctx, id: &str, stored: &Value) -> Result<Option<Found>> {
        let (api, rid) = split(id)?;
        let r =
            apigw(ctx, Method::GET, &format!("{}/routes/{}", api_path(&api), uri_encode(&rid)), None).await?;
        let mut inputs = stored_or_empty(stored);
        set(&mut inputs, "api_id", json!(api));
        set(&mut inputs, "route_key", r["routeKey"].clone());
        set(&mut inputs, "target", r["target"].clone());
        set(&mut inputs, "authorization_type", json!(r["authorizationType"].as_str().unwrap_or("NONE")));
        Ok(Some(Found { inputs, outputs: json!({"route_id": rid}) }))
    }

    async fn update(&self, ctx: &Ctx, id: &str, _olds: &Value, news: &Value) -> Result<Value> {
        let (api, rid) = split(id)?;
        apigw(
            ctx,
            Method::PATCH,
            &format!("{}/routes/{}", api_path(&api), uri_encode(&rid)),
            Some(route_body(news)),
        )
        .await?;
        Ok(json!({"route_id": rid}))
    }

    async fn delete(&self, ctx: &Ctx, id: &str, _inputs: &Value) -> Result<()> {
        let (api, rid) = split(id)?;
        apigw(ctx, Method::DELETE, &format!("{}/routes/{}", api_path(&api), uri_encode(&rid)), None).await?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------

pub struct Stage;

async fn stage_outputs(ctx: &Ctx, api: &str, name: &str) -> Result<Value> {
    let a = apigw(ctx, Method::GET, &api_path(api), None).await?;
    let endpoint = a["apiEndpoint"].as_str().unwrap_or_default();
    let url = if name == "$default" { endpoint.to_string() } else { format!("{endpoint}/{name}") };
    Ok(json!({"name": name, "invoke_url": url}))
}

fn stage_path(api: &str, name: &str) -> String {
    format!("{}/stages/{}", api_path(api), uri_encode(name))
}

impl Kind for Stage {
    fn spec(&self) -> Spec {
        Spec {
            token: "aws:apigatewayv2:Stage",
            description: "A stage of an HTTP API; `$default` serves at the API's root. Id: `API_ID/STAGE_NAME`.",
            properties: json!({
                "api_id": {"type": "string", "description": "The API's id."},
                "name": {"type": "string", "default": "$default", "description": "The stage name."},
                "auto_deploy": {"type": "boolean", "default": true, "description": "Deploy every change to the API automatically."},
                "description": {"type": "string", "description": "A description."},
                "stage_variables": {"type": "object", "description": "Stage variables (string values)."},
            }),
            required: &["api_id"],
            outputs: &["name", "invoke_url"],
            replace_on_changes: &["api_id", "name"],
            identity: &["api_id", "name"],
            name: None,
            diff_ignore: &[],
        }
    }

    async fn create(&self, ctx: &Ctx, inputs: &Value) -> Result<Created> {
        let (api, name) =
            (inputs.str_of("api_id").unwrap_or_default(), inputs.str_of("name").unwrap_or("$default"));
        let mut body = json!({"stageName": name, "autoDeploy": inputs["auto_deploy"]});
        set(&mut body, "description", inputs["description"].clone());
        set(&mut body, "stageVariables", inputs["stage_variables"].clone());
        apigw(ctx, Method::POST, &format!("{}/stages", api_path(api)), Some(body)).await?;
        Ok(Created { id: format!("{api}/{name}"), outputs: stage_outputs(ctx, api, name).await? })
    }

    fn find(
        &self,
        _ctx: &Ctx,
        inputs: &Value,
    ) -> impl std::future::Future<Output = Result<Option<String>>> + Send {
        let id =
            inputs.str_of("api_id").map(|a| format!("{a}/{}", inputs.str_of("name").unwrap_or("$default")));
        async move { Ok(id) }
    }

    async fn read(&self, ctx: &Ctx, id: &str, stored: &Value) -> Result<Option<Found>> {
        let (api, name) = split(id)?;
        let s = apigw(ctx, Method::GET, &stage_path(&api, &name), None).await?;
        let mut inputs = stored_or_empty(stored);
        set(&mut inputs, "api_id", json!(api));
        set(&mut inputs, "name", json!(name));
        set(&mut inputs, "auto_deploy", json!(s["autoDeploy"].as_bool().unwrap_or(false)));
        set(&mut inputs, "description", json!(s["description"].as_str().filter(|d| !d.is_empty())));
        let vars = s["stageVariables"].as_object().filter(|m| !m.is_empty()).cloned().map(Value::Object);
        set(&mut inputs, "stage_variables", vars.unwrap_or(Value::Null));
        Ok(Some(Found { inputs, outputs: stage_outputs(ctx, &api, &name).await? }))
    }

    async fn update(&self, ctx: &Ctx, id: &str, _olds: &Value, news: &Value) -> Result<Value> {
        let (api, name) = split(id)?;
        let body = json!({
            "autoDeploy": news["auto_deploy"],
            "description": news.str_of("description").unwrap_or(""),
            "stageVariables": news.obj_of("stage_variables").cloned().unwrap_or_default(),
        });
        apigw(ctx, Method::PATCH, &stage_path(&api, &name), Some(body)).await?;
        stage_outputs(ctx, &api, &name).await
    }

    async fn delete(&self, ctx: &Ctx, id: &str, _inputs: &Value) -> Result<()> {
        let (api, name) = split(id)?;
        apigw(ctx, Method::DELETE, &stage_path(&api, &name), None).await?;
        Ok(())
    }
}
