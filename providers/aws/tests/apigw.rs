//! API Gateway v2 HTTP APIs against moto, through the protocol.

mod common;

use common::{Provider, import_find_delete, moto};
use serde_json::json;

const FN_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:hello";

#[test]
fn api_full_lifecycle() {
    let mut p = Provider::moto(json!({}));
    let ty = "aws:apigatewayv2:Api";
    let inputs = p.check(ty, "http", json!({"cors": {"allow_origins": ["*"]}}), None);
    assert_eq!(inputs["protocol_type"], "HTTP");
    let (id, out) = p.create(ty, "http", &inputs);
    assert_eq!(out["execution_arn"], format!("arn:aws:execute-api:us-east-1:123456789012:{id}"));
    assert!(out["api_endpoint"].as_str().unwrap().contains(&id), "{out}");
    assert_eq!(p.read(ty, Some(&id), &inputs)["inputs"], inputs);

    // A rename and a new description are updates (API names are not unique).
    let mut news = inputs.clone();
    news["name"] = json!("renamed-api");
    news["description"] = json!("the shop");
    let d = p.diff(ty, &id, &inputs, &news);
    assert_eq!((d["changed"].clone(), d["replaces"].clone()), (json!(["description", "name"]), json!([])));
    p.update(ty, &id, &inputs, &news);
    assert_eq!(p.read(ty, Some(&id), &news)["inputs"], news);

    moto().py(&format!("client('apigatewayv2').update_api(ApiId='{id}', Description='by hand')"));
    assert_eq!(p.read(ty, Some(&id), &news)["inputs"]["description"], "by hand");

    // Replace: a WebSocket API is another API.
    let ws = p.check(ty, "http", json!({"protocol_type": "WEBSOCKET"}), Some(&news));
    let d = p.diff(ty, &id, &news, &ws);
    assert_eq!(
        (d["replaces"].clone(), d["delete_before_replace"].clone()),
        (json!(["protocol_type"]), json!(false))
    );
    let (ws_id, _) = p.create(ty, "http", &ws);
    p.delete(ty, &id, &news);
    assert!(p.read(ty, Some(&id), &news).is_null());
    import_find_delete(&mut p, ty, &ws_id, &ws);
}

#[test]
fn integration_route_and_stage_full_lifecycle() {
    let mut p = Provider::moto(json!({}));
    let api = p.check("aws:apigatewayv2:Api", "shop", json!({}), None);
    let (api_id, _) = p.create("aws:apigatewayv2:Api", "shop", &api);

    // Integration.
    let ty = "aws:apigatewayv2:Integration";
    let integ = p.check(
        ty,
        "hello",
        json!({"api_id": api_id, "integration_uri": FN_ARN, "integration_method": "POST"}),
        None,
    );
    let (integ_id, integ_out) = p.create(ty, "hello", &integ);
    assert_eq!(
        integ_out["target"],
        format!("integrations/{}", integ_out["integration_id"].as_str().unwrap())
    );
    assert_eq!(p.read(ty, Some(&integ_id), &integ)["inputs"], integ);
    let mut news = integ.clone();
    news["timeout_milliseconds"] = json!(10000);
    assert_eq!(p.diff(ty, &integ_id, &integ, &news)["replaces"], json!([]));
    p.update(ty, &integ_id, &integ, &news);
    assert_eq!(p.read(ty, Some(&integ_id), &news)["inputs"]["timeout_milliseconds"], 10000);
    let iid = integ_out["integration_id"].as_str().unwrap();
    moto().py(&format!(
        "client('apigatewayv2').update_integration(ApiId='{api_id}', IntegrationId='{iid}', TimeoutInMillis=5000)"
    ));
    assert_eq!(p.read(ty, Some(&integ_id), &news)["inputs"]["timeout_milliseconds"], 5000);

    // Route.
    let rty = "aws:apigatewayv2:Route";
    let route = p.check(
        rty,
        "get-hello",
        json!({"api_id": api_id, "route_key": "GET /hello", "target": integ_out["target"]}),
        None,
    );
    let (route_id, _) = p.create(rty, "get-hello", &route);
    assert_eq!(p.read(rty, Some(&route_id), &route)["inputs"], route);
    let mut moved = route.clone();
    moved["route_key"] = json!("GET /hello/{name}");
    assert_eq!(p.diff(rty, &route_id, &route, &moved)["replaces"], json!([]));
    p.update(rty, &route_id, &route, &moved);
    assert_eq!(p.read(rty, Some(&route_id), &moved)["inputs"], moved);
    let rid = route_id.split('/').nth(1).unwrap();
    moto().py(&format!(
        "client('apigatewayv2').update_route(ApiId='{api_id}', RouteId='{rid}', RouteKey='POST /x')"
    ));
    assert_eq!(p.read(rty, Some(&route_id), &moved)["inputs"]["route_key"], "POST /x");
    import_find_delete(&mut p, rty, &route_id, &json!({"api_id": api_id, "route_key": "POST /x"}));

    // Stage.
    let sty = "aws:apigatewayv2:Stage";
    let stage = p.check(sty, "default", json!({"api_id": api_id}), None);
    assert_eq!(stage["name"], "$default");
    let (stage_id, stage_out) = p.create(sty, "default", &stage);
    assert_eq!(stage_id, format!("{api_id}/$default"));
    assert!(stage_out["invoke_url"].as_str().unwrap().contains(&api_id), "{stage_out}");
    assert_eq!(p.read(sty, Some(&stage_id), &stage)["inputs"], stage);
    let mut snews = stage.clone();
    snews["stage_variables"] = json!({"mode": "test"});
    assert_eq!(p.diff(sty, &stage_id, &stage, &snews)["replaces"], json!([]));
    // moto 5 has no UpdateStage (it answers 500), so the in-place update is checked up to
    // the request it sends; against AWS the same PATCH updates the stage.
    p.configure(json!({"max_attempts": 1})).unwrap();
    let e = p
        .call("update", json!({"type": sty, "name": "default", "id": stage_id, "olds": stage, "news": snews, "old_outputs": {}}))
        .unwrap_err();
    assert!(e.message.starts_with("updating aws:apigatewayv2:Stage `default`: HTTP500"), "{e:?}");
    p.configure(json!({"retry_base_ms": 20})).unwrap();
    let snews = stage.clone();
    // Drift: the stage deleted behind skyform's back reads as gone.
    moto().py(&format!("client('apigatewayv2').delete_stage(ApiId='{api_id}', StageName='$default')"));
    assert!(p.read(sty, Some(&stage_id), &snews).is_null());
    let (stage_id, _) = p.create(sty, "default", &stage);
    // Renaming a stage replaces it; a new name can exist beside the old one.
    let prod = p.check(sty, "default", json!({"api_id": api_id, "name": "prod"}), None);
    let d = p.diff(sty, &stage_id, &snews, &prod);
    assert_eq!((d["replaces"].clone(), d["delete_before_replace"].clone()), (json!(["name"]), json!(false)));
    let (prod_id, prod_out) = p.create(sty, "default", &prod);
    assert!(prod_out["invoke_url"].as_str().unwrap().ends_with("/prod"), "{prod_out}");
    p.delete(sty, &stage_id, &snews);
    assert!(p.read(sty, Some(&stage_id), &snews).is_null());
    import_find_delete(&mut p, sty, &prod_id, &prod);

    import_find_delete(&mut p, ty, &integ_id, &news);
    p.delete("aws:apigatewayv2:Api", &api_id, &api);
}
