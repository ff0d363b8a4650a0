//! The `spi` module on the board's HSPI pins: full-duplex exchanges through a MOSI-to-MISO
//! loopback wire, the MISO net's level with nothing there, the buffer forms, the trace lines,
//! and the firmware's errors.

use crate::support::Flash;

const SCRIPT: &str = r#"
print(spi.setup(1, spi.MASTER, spi.CPOL_LOW, spi.CPHA_LOW, 8, 8, spi.FULLDUPLEX))
local n, a, t, s = spi.send(1, 0xA5, {1, 2}, "hi")
print(n, a, table.concat(t, ","), s)
print(spi.recv(1, 2):byte(1, -1))
spi.set_mosi(1, 0, 16, 0xBEEF)
spi.transaction(1, 8, 0x9F, 0, 0, 16, 0, -16)
print(string.format("%x", spi.get_miso(1, 0, 16, 1)))
spi.setup(1, spi.MASTER, spi.CPOL_LOW, spi.CPHA_LOW, 8, 8)
print(spi.send(1, 1, 2))
print(pcall(function() return spi.setup(2, 1, 0, 0, 8, 8) end))
print(pcall(function() return spi.setup(1, 2, 0, 0, 8, 8) end))
print(pcall(function() return spi.setup(1, 1, 0, 0, 33, 8) end))
print(pcall(function() return spi.send(1) end))
print(pcall(function() return spi.set_mosi(1, 500, 16, 1) end))
print(pcall(function() return spi.get_miso(1, 500, 8, 2) end))
"#;

#[test]
fn a_loopback_wire_returns_every_bit_sent_and_each_transaction_is_traced() {
    let board = "[[board.part]]\nkind = \"wire\"\npins = [7, 6]\n";
    let f = Flash::new(&[("init.lua", SCRIPT), ("nodemcu-sim.toml", board)]);
    let trace = f.file("trace.jsonl");
    let r = f.run(
        "init.lua",
        &["--virtual-time", "--trace", trace.to_str().unwrap()],
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "1\n5\t165\t1,2\thi\n255\t255\nbeef\n2\n\
         false\tinit.lua:11: spi 2 does not exist\n\
         false\tinit.lua:12: wrong arg type\n\
         false\tinit.lua:13: out of range\n\
         false\tinit.lua:14: wrong arg type\n\
         false\tinit.lua:15: data range exceeded > 512 bits\n\
         false\tinit.lua:16: out of range\n"
    );
    let lines: Vec<String> = std::fs::read_to_string(&trace)
        .expect("trace")
        .lines()
        .filter(|l| l.contains("\"spi\""))
        .map(|l| l.split_once(',').expect("t").1.to_string())
        .collect();
    assert_eq!(lines[0], r#""spi":8,"mosi":[165],"miso":[165]}"#);
    // The transaction: command 0x9F, then the buffer's 0xBEEF, read back during the MOSI phase.
    assert_eq!(
        lines[7],
        r#""spi":8,"mosi":[159,190,239],"miso":[159,190,239]}"#
    );
    assert_eq!(lines.len(), 10);
}

#[test]
fn with_nothing_on_miso_it_reads_its_floating_level() {
    let script = r#"
spi.setup(1, spi.MASTER, spi.CPOL_LOW, spi.CPHA_LOW, spi.DATABITS_8, 0, spi.FULLDUPLEX)
print(spi.send(1, 0xFF))
gpio.mode(6, gpio.INPUT, gpio.PULLUP)
print(spi.send(1, 0x00))
"#;
    let f = Flash::new(&[("init.lua", script)]);
    let r = f.run("init.lua", &["--virtual-time"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "1\t0\n1\t255\n");
}
