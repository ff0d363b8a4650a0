//! A chain of two MAX7219s on the SPI bus, driven by the `max7219.lua` driver (vendored
//! unmodified in `fixtures/drivers`): characters written and read back as each chip's rows,
//! the driver's inversion, intensity and shutdown, and the latched frames in the trace.

use std::path::Path;

use crate::support::Flash;

const BOARD: &str = "[[board.part]]\nkind = \"max7219\"\nname = \"matrix\"\npin = 8\ncount = 2\n";

const SCRIPT: &str = r#"
local sim = require "nodemcu-sim"
local function show()
  for i, rows in ipairs(sim.matrix("matrix")) do
    local s = {}
    for k, r in ipairs(rows) do s[k] = string.format("%02x", r) end
    print(i, table.concat(s, " "))
  end
end
print(sim.part("matrix"))
require "max7219"
max7219.setup({ numberOfModules = 2, slaveSelectPin = 8 })
print(sim.part("matrix"))
show()
local A = { 0x18, 0x24, 0x42, 0x42, 0x7e, 0x42, 0x42, 0x00 }
local B = { 0x7c, 0x42, 0x42, 0x7c, 0x42, 0x42, 0x7c, 0x00 }
max7219.write({ A, B })
show()
max7219.write({ A, B }, { invert = true })
show()
max7219.setIntensity(9)
print(sim.part("matrix"))
max7219.shutdown(true)
print(sim.part("matrix"))
show()
print(pcall(sim.matrix, "nothing"))
"#;

fn flash() -> Flash {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let read = |f: &str| std::fs::read_to_string(root.join("fixtures/drivers").join(f)).expect(f);
    let (driver, reverse) = (read("max7219.lua"), read("reverseBytes.lua"));
    Flash::new(&[
        ("init.lua", SCRIPT),
        ("max7219.lua", &driver),
        ("reverseBytes.lua", &reverse),
        ("nodemcu-sim.toml", BOARD),
    ])
}

#[test]
fn the_max7219_driver_writes_characters_the_chips_show() {
    let f = flash();
    let trace = f.file("trace.jsonl");
    let r = f.run(
        "init.lua",
        &["--virtual-time", "--trace", trace.to_str().unwrap()],
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    // The driver's module 1 is sent first in each window, so it ends in the chip farthest
    // from DIN (chip 2 here).
    assert_eq!(
        r.stdout,
        "off\t0\n\
         on\t1\n\
         1\t00 00 00 00 00 00 00 00\n\
         2\t00 00 00 00 00 00 00 00\n\
         1\t7c 42 42 7c 42 42 7c 00\n\
         2\t18 24 42 42 7e 42 42 00\n\
         1\t00 3e 42 42 3e 42 42 3e\n\
         2\t00 42 42 7e 42 42 24 18\n\
         on\t9\n\
         off\t9\n\
         1\t00 00 00 00 00 00 00 00\n\
         2\t00 00 00 00 00 00 00 00\n\
         false\tno max7219 named 'nothing'\n"
    );
    let lines: Vec<String> = std::fs::read_to_string(&trace)
        .expect("trace")
        .lines()
        .filter(|l| l.contains("\"max7219\""))
        .map(|l| l.split_once(',').expect("t").1.to_string())
        .collect();
    // `gpio.mode(8, gpio.OUTPUT)` drives CS low before the driver's first `gpio.write(8, HIGH)`,
    // so the chips latch their power-up (empty) registers first, as real ones would. Then
    // setup: scan limit, decode mode, display test, intensity, shutdown for module 1 (the far
    // chip) then module 2, each frame with a no-op for the other chip.
    assert_eq!(
        &lines[..4],
        [
            r#""max7219":"matrix","latch":[[0,0],[0,0]]}"#,
            r#""max7219":"matrix","latch":[[0,0],[11,7]]}"#,
            r#""max7219":"matrix","latch":[[0,0],[9,0]]}"#,
            r#""max7219":"matrix","latch":[[0,0],[15,0]]}"#,
        ]
    );
    assert_eq!(lines[6], r#""max7219":"matrix","latch":[[11,7],[0,0]]}"#);
    // The first row of the written "A" on the far chip.
    assert!(
        lines.contains(&r#""max7219":"matrix","latch":[[0,0],[1,24]]}"#.to_string()),
        "{lines:?}"
    );
}
