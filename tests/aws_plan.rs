//! Honest previews and plans on AWS: `up --plan` creates exactly the physical names that
//! `preview --save-plan` showed (a function's generated name used to be drawn again at apply
//! time, because its inputs hold the role's ARN, unknown until the role exists), and the
//! preview's header names the provider, region, account and endpoint it will change.

mod aws_common;

use aws_common::{Moto, Project};
use serde_json::Value;

#[test]
fn up_with_a_saved_plan_creates_the_names_it_showed() {
    let moto = Moto::start();
    let p = Project::new("hello-http", &moto);
    let preview = p.prod(&["preview", "--save-plan", "plan.json"]);
    let header = preview.ok().stdout.lines().next().unwrap_or_default().to_string();
    assert_eq!(
        header,
        format!(
            "Previewing update (prod) on aws: region us-east-1, account 123456789012, endpoint {}:",
            moto.endpoint
        ),
        "{}",
        preview.text()
    );
    let plan: Value = serde_json::from_slice(&std::fs::read(p.dir.join("plan.json")).unwrap()).unwrap();
    let planned = |name: &str| -> String {
        let step = plan["steps"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap();
        step["inputs"]["name"].as_str().unwrap_or_else(|| panic!("{name}: {step}")).to_string()
    };
    let (function, role) = (planned("hello"), planned("hello-role"));
    assert!(function.starts_with("hello-"), "{function}");

    p.prod(&["up", "--plan", "plan.json", "--yes"]).ok();
    let recorded = p.recorded();
    assert_eq!(recorded["hello"].1, function, "the function has the name the plan showed");
    assert_eq!(recorded["hello-role"].1, role);
    let real = moto.py("print(client('lambda').list_functions()['Functions'][0]['FunctionName'])");
    assert_eq!(real, function);
}
