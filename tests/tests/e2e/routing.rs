//! Host and path routing: exact host beats `*.suffix` beats `*`, then the
//! longest prefix; no match is a JSON 404. h2c requests route the same way.

use serin_loadtest::FakeVersion;
use serin_tests::client::{h2c_at, TestClient};
use serin_tests::TestEnv;

fn route(name: &str, hosts: &str, prefix: &str, url: &str) -> String {
    format!(
        "[[routes]]\nname = \"{name}\"\nhosts = {hosts}\npath_prefix = \"{prefix}\"\n\
         [[routes.versions]]\nname = \"{name}\"\nurl = \"{url}\"\nweight = 1\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_then_longest_prefix() {
    let any = FakeVersion::start("any").unwrap();
    let api = FakeVersion::start("api").unwrap();
    let exact = FakeVersion::start("exact").unwrap();
    let wild = FakeVersion::start("wild").unwrap();
    let toml = [
        "[listen]\nhttp = \"127.0.0.1:1\"\n".to_owned(),
        route("any", "[\"*\"]", "/", &any.url()),
        route("api", "[\"*\"]", "/api", &api.url()),
        route("exact", "[\"shop.example.com\"]", "/", &exact.url()),
        route("wild", "[\"*.example.com\"]", "/", &wild.url()),
    ]
    .concat();
    let env = TestEnv::start(&toml).await;
    let c = TestClient::http1();
    let cases = [
        ("other.test", "/", "any"),
        ("other.test", "/api/v1/x", "api"),
        ("shop.example.com", "/api", "exact"),
        ("SHOP.Example.com:8080", "/", "exact"),
        ("a.example.com", "/", "wild"),
        ("example.com", "/", "any"),
    ];
    for (host, path, want) in cases {
        let r = c.get(&env.url(path), &[("host", host)]).await;
        assert_eq!(
            r.header("x-serin-version"),
            Some(want),
            "host {host} path {path}"
        );
    }
    // h2c: the host comes from :authority.
    let r = h2c_at(env.http, "http://shop.example.com/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-serin-version"), Some("exact"));
    assert_eq!(r.text(), "exact\n");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_route_is_a_json_404() {
    let v = FakeVersion::start("v").unwrap();
    let toml = [
        "[listen]\nhttp = \"127.0.0.1:1\"\n".to_owned(),
        route("only", "[\"a.test\"]", "/app", &v.url()),
    ]
    .concat();
    let env = TestEnv::start(&toml).await;
    let c = TestClient::http1();
    let r = c.get(&env.url("/app"), &[("host", "b.test")]).await;
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].as_str().unwrap().contains("no route"));
    let r = c.get(&env.url("/other"), &[("host", "a.test")]).await;
    assert_eq!(r.status, 404);
    assert_eq!(v.requests(), 0);
    env.stop().await;
}
