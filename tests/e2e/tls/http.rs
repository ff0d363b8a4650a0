//! `http.get` over `https://`: the http module's TLS client against a loopback rustls server,
//! honouring `tls.cert.verify` as net's TLS sockets do.

use super::lua_long_string;
use super::peer::*;
use super::run_lua;

fn get_script(ca_pem: &str, port: u16) -> String {
    format!(
        "tls.cert.verify({})
         http.get('https://localhost:{port}/x', nil, function(c, b, h) print(c, b, h and h.a) end)",
        lua_long_string(ca_pem)
    )
}

#[test]
fn https_get_verifies_the_server_and_sends_the_firmware_request() {
    let ca = ca("http");
    let (port, srv) = serve_tls(server_config(&leaf(&ca), None), |tls| {
        let req = read_request(tls);
        reply_and_close(tls, b"HTTP/1.1 200 OK\r\nA: 1\r\n\r\nsecret");
        req
    });
    let ran = run_lua(
        &get_script(&ca.pem, port),
        &["--resolve", "localhost=127.0.0.1"],
    );
    assert_eq!(ran.stdout, "200\tsecret\t1\n", "{}", ran.stderr);
    let req = srv.join().unwrap().unwrap().unwrap();
    assert_eq!(
        String::from_utf8(req).unwrap(),
        format!(
            "GET /x HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\nUser-Agent: ESP8266\r\n\r\n"
        )
    );
}

#[test]
fn https_from_another_ca_calls_back_minus_one() {
    let (port, _srv) = serve_tls(server_config(&leaf(&ca("real")), None), |_| ());
    let ran = run_lua(
        &get_script(&ca("other").pem, port),
        &["--resolve", "localhost=127.0.0.1"],
    );
    assert_eq!(ran.stdout, "-1\tnil\tnil\n", "{}", ran.stderr);
}
