//! The ESP32 `http` module over `https://`: the `cert` option pins the server's CA, and without
//! it the device's TLS client (`tls.cert.verify`) applies.

use super::lua_long_string;
use super::peer::*;
use crate::support::run_lua;

const ARGS: &[&str] = &["--target", "esp32", "--resolve", "localhost=127.0.0.1"];

#[test]
fn https_with_the_cert_option_fetches_from_a_server_of_that_ca() {
    let ca = ca("http32");
    let (port, srv) = serve_tls(server_config(&leaf(&ca), None), |tls| {
        let req = read_request(tls);
        reply_and_close(
            tls,
            b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nsecret",
        );
        req
    });
    let script = format!(
        "print(http.get('https://localhost:{port}/x', {{cert = {}}}))",
        lua_long_string(&ca.pem)
    );
    let ran = run_lua(&script, ARGS);
    assert!(ran.stdout.starts_with("200\tsecret\ttable: "), "{ran:?}");
    let req = srv.join().unwrap().unwrap().unwrap();
    assert_eq!(
        String::from_utf8(req).unwrap(),
        format!(
            "GET /x HTTP/1.1\r\nUser-Agent: NodeMCU (ESP32)\r\nHost: localhost:{port}\r\n\
             Connection: close\r\nContent-Length: 0\r\n\r\n"
        )
    );
}

#[test]
fn https_from_another_ca_fails_to_connect() {
    let (port, _srv) = serve_tls(server_config(&leaf(&ca("real")), None), |_| ());
    let script = format!(
        "print(http.get('https://localhost:{port}/', {{cert = {}}}))",
        lua_long_string(&ca("other").pem)
    );
    let ran = run_lua(&script, ARGS);
    // ESP_ERR_HTTP_CONNECT, negated.
    assert_eq!(ran.stdout, "-28674\t\tnil\n", "{ran:?}");
}
