//! `net.ping`: the 3.0 ESP8266 firmware's echo cadence, callback arguments, sequence numbers and
//! errors, against the simulator's model of the network (loopback answers, other hosts do not),
//! with names resolved by a real DNS server on loopback.

use crate::dns::DnsServer;
use crate::support::run_lua;

const PRINT_RECV: &str = r##"
    local function recv(b, ip, sq, tm)
      print("recv", b, ip, sq, tm, math.floor(tmr.now() / 1000))
    end
    local function sent(ip, tc, toc, tb, tt)
      print("sent", ip, tc, toc, tb, tt, math.floor(tmr.now() / 1000))
    end
"##;

fn ping_script(body: &str) -> String {
    format!("{PRINT_RECV}\n{body}")
}

#[test]
fn loopback_answers_each_echo_once_a_second_then_the_summary() {
    let r = run_lua(
        &ping_script(r##"net.ping("127.0.0.1", 3, recv, sent)"##),
        &["--virtual-time"],
    );
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        "recv\t32\t127.0.0.1\t1\t1\t1\n\
         recv\t32\t127.0.0.1\t2\t1\t1001\n\
         recv\t32\t127.0.0.1\t3\t1\t2001\n\
         sent\t127.0.0.1\t3\t0\t96\t3000\t3000\n"
    );
    assert_eq!(r.stderr, "");
}

#[test]
fn a_host_out_of_reach_times_out_four_times_by_default() {
    let r = run_lua(
        &ping_script(r##"net.ping("10.1.2.3", recv, sent)"##),
        &["--virtual-time"],
    );
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        "recv\t0\t10.1.2.3\t0\t-1\t1000\n\
         recv\t0\t10.1.2.3\t0\t-1\t2000\n\
         recv\t0\t10.1.2.3\t0\t-1\t3000\n\
         recv\t0\t10.1.2.3\t0\t-1\t4000\n\
         sent\t10.1.2.3\t4\t4\t0\t4000\t4000\n"
    );
    assert!(r.stderr.contains("only loopback addresses"), "{r:?}");
}

#[test]
fn names_resolve_through_dns_and_a_failed_name_reports_zero_bytes_only() {
    let dns = DnsServer::start(&[("peer.test.", std::net::Ipv4Addr::LOCALHOST)]);
    let r = run_lua(
        &ping_script(
            r##"
            net.ping("missing.test", 2, function(...)
              print("missing", select("#", ...), ...)
            end, sent)
            net.ping("peer.test", 1, recv)
            "##,
        ),
        &[
            "--virtual-time",
            "--dns",
            "127.0.0.1",
            "--dns-port",
            &dns.port_arg(),
        ],
    );
    assert_eq!(r.status, 0, "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines.contains(&"missing\t1\t0"), "{r:?}");
    assert_eq!(lines.len(), 2, "{r:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("recv\t32\t127.0.0.1\t1\t1\t")),
        "{r:?}"
    );
}

#[test]
fn a_dotted_quad_that_is_broadcast_fails_inside_the_call() {
    let r = run_lua(
        r##"
        net.ping("255.255.255.255", function(...) print("cb", select("#", ...), ...) end)
        print("after")
        "##,
        &["--virtual-time"],
    );
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(r.stdout, "cb\t1\t0\nafter\n");
}

#[test]
fn sequence_numbers_run_on_across_pings() {
    let r = run_lua(
        &ping_script(
            r##"
            net.ping("127.0.0.1", 1, recv, function()
              net.ping("127.0.0.1", 2, recv)
            end)
            "##,
        ),
        &["--virtual-time"],
    );
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        "recv\t32\t127.0.0.1\t1\t1\t1\n\
         recv\t32\t127.0.0.1\t2\t1\t1001\n\
         recv\t32\t127.0.0.1\t3\t1\t2001\n"
    );
}

#[test]
fn bad_arguments_raise_the_firmware_errors() {
    let r = run_lua(
        r##"
        local f = function() end
        for _, args in ipairs({
          {"127.0.0.1"},
          {"127.0.0.1", 2},
          {"127.0.0.1", f, 5},
          {"127.0.0.1", 2, f, "x"},
          {"127.0.0.1", "two", f},
          {"", f},
          {("a"):rep(256), f},
          {nil, f},
        }) do
          local ok, e = pcall(function() net.ping((table.unpack or unpack)(args, 1, 4)) end)
          print((e:gsub("^[^:]*:%d+: ", "")))
        end
        "##,
        &["--virtual-time"],
    );
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        "bad argument #-2 to 'ping' (no received callback specified)\n\
         bad argument #-2 to 'ping' (no received callback specified)\n\
         bad argument #-1 to 'ping' (invalid sent callback, function expected)\n\
         bad argument #-1 to 'ping' (invalid sent callback, function expected)\n\
         bad argument #2 to 'ping' (number expected, got string)\n\
         lwip error -12\n\
         lwip error -12\n\
         bad argument #1 to 'ping' (string expected, got nil)\n"
    );
}

#[test]
fn ping_is_a_3_0_esp8266_function() {
    for args in [
        &["--firmware", "2.2"][..],
        &["--firmware", "1.5"][..],
        &["--target", "esp32"][..],
    ] {
        let r = run_lua("print(net.ping)", args);
        assert_eq!(r.stdout, "nil\n", "{args:?} {r:?}");
    }
    let r = run_lua("print(type(net.ping))", &[]);
    assert_eq!(r.stdout, "function\n", "{r:?}");
}
