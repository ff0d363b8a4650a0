//! `dht` on the virtual board: DHT11 and DHT22 parts answering each generation's readers with
//! the board file's and the test module's readings, the firmware's decoding of each frame, and
//! `ERROR_TIMEOUT` where no sensor answers.

use crate::support::{Flash, Ran};

const SENSORS: &str = r#"
[[board.part]]
kind = "dht22"
pin = 2
name = "outdoor"
temperature = -10.1
humidity = 65.3
temperatures = [ { at = 2000, value = 24.6 } ]

[[board.part]]
kind = "dht11"
pin = 5
temperature = 23
humidity = 55
"#;

/// Lua 5.3 prints the readings as the floats the firmware pushes (`23.0`, `-999.0`); 5.1 has one
/// number type. Before 3.0 the decimals are pushed as floats too (`decimals`).
fn floats(s: &str, decimals: bool) -> String {
    if !cfg!(feature = "lua53") {
        return s.to_string();
    }
    s.lines()
        .map(|l| {
            let mut f: Vec<String> = l.split('\t').map(str::to_string).collect();
            if f.len() == 5 {
                for v in &mut f[1..if decimals { 5 } else { 3 }] {
                    if !v.contains('.') {
                        v.push_str(".0");
                    }
                }
            }
            f.join("\t") + "\n"
        })
        .collect()
}

fn run(script: &str, args: &[&str]) -> Ran {
    let f = Flash::new(&[("init.lua", script), ("nodemcu-sim.toml", SENSORS)]);
    let mut all = vec!["--virtual-time", "--timeout", "10000"];
    all.extend_from_slice(args);
    f.run("init.lua", &all)
}

const READS: &str = r#"
print(dht.OK, dht.ERROR_CHECKSUM, dht.ERROR_TIMEOUT, dht.read12 ~= nil)
print(dht.read(2))
print(dht.readxx(2))
print(dht.read11(2))
print(dht.read(5))
print(dht.read11(5))
print(dht.read(6))
print(pcall(dht.read, 0))
print(pcall(dht.read11, 13))
require("nodemcu-sim").humidity("dht11", 70)
tmr.create():alarm(2000, tmr.ALARM_SINGLE, function()
  print(dht.read(2))
  print(dht.read(5))
end)
"#;

#[test]
fn readers_decode_each_sensor_as_the_firmware_does() {
    let r = run(READS, &[]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    // 3.0: read and readxx use the DHT22 decoding; read11 takes a DHT22's bytes as a DHT11's.
    // The decimals are the C library's: (int)((65.3 - 65) * 1000) is 299.
    assert_eq!(
        r.stdout,
        floats(
            "0\t-1\t-2\ttrue\n\
         0\t-10.1\t65.3\t-100\t299\n\
         0\t-10.1\t65.3\t-100\t299\n\
         0\t128.5\t16.1\t500\t100\n\
         0\t23\t55\t0\t0\n\
         0\t23\t55\t0\t0\n\
         -2\t-999\t-999\t0\t0\n\
         false\tdht 0 does not exist\n\
         false\tdht 13 does not exist\n\
         0\t24.6\t65.3\t600\t299\n\
         0\t23\t70\t0\t0\n",
            false
        )
    );
}

#[test]
fn older_generations_have_their_readers_and_the_dht11_ignores_a_short_start() {
    let r = run(
        r#"
print(dht.read12)
print(dht.read(2))
print(dht.readxx(2))
print(dht.readxx(5))
print(dht.read11(5))
"#,
        &["--firmware", "2.2"],
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        floats(
            "nil\n0\t-10.1\t65.3\t-100\t299\n0\t-10.1\t65.3\t-100\t299\n\
             -2\t-999\t-999\t0\t0\n0\t23\t55\t0\t0\n",
            true
        )
    );
}

#[test]
fn the_esp32_firmware_has_read11_and_read2x_on_gpio_numbers() {
    let f = Flash::new(&[
        (
            "init.lua",
            r#"
print(dht.read, dht.OK, dht.ERROR_CHECKSUM, dht.ERROR_TIMEOUT)
print(dht.read2x(2))
print(dht.read11(5))
print(dht.read11(2))
print(dht.read2x(6))
print(pcall(dht.read2x, 34))
"#,
        ),
        ("nodemcu-sim.toml", SENSORS),
    ]);
    let r = f.run("init.lua", &["--target", "esp32", "--virtual-time"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    // read11 on a DHT22 takes bytes 0 and 2 as they are; a timeout gives the status alone.
    assert_eq!(
        r.stdout,
        floats(
            "nil\t0\t-1\t-2\n0\t-10.1\t65.3\t-100\t299\n0\t23\t55\t0\t0\n0\t128\t2\t0\t0\n-2\n\
             false\tbad argument #1 to '?' (invalid gpio)\n",
            false
        )
    );
}
