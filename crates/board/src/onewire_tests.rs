//! 1-Wire: CRCs against published vectors, the search over several ROMs, the DS18B20's
//! scratchpad byte for byte and its conversion time.

use super::*;
use crate::spec::PartSpec;
use crate::{Board, Chip, Wire};

#[test]
fn crcs_match_the_published_vectors() {
    // Maxim application note 27's ROM example, and a DS18B20's power-on scratchpad.
    assert_eq!(crc8(&[0x02, 0x1C, 0xB8, 0x01, 0x00, 0x00, 0x00]), 0xA2);
    assert_eq!(
        crc8(&[0x50, 0x05, 0x4B, 0x46, 0x7F, 0xFF, 0x0C, 0x10]),
        0x1C
    );
    // CRC-16/ARC's check value.
    assert_eq!(crc16(b"123456789", 0), 0xBB3D);
    assert_eq!(crc8(&[]), 0);
}

fn spec(pin: u8, rom: Option<&str>, t: f64) -> Ds18b20Spec {
    Ds18b20Spec {
        pin,
        name: None,
        rom: rom.map(str::to_string),
        temperature: Some(t),
        temperatures: vec![],
        parasite: false,
    }
}

fn rom(family: u8, serial: u8) -> String {
    let mut r = [family, serial, 0, 0, 0, 0, 0, 0];
    r[7] = crc8(&r[..7]);
    rom_hex(&r)
}

fn board_with(specs: Vec<Ds18b20Spec>) -> Board {
    let parts: Vec<PartSpec> = specs.into_iter().map(PartSpec::Ds18b20).collect();
    Board::new(Chip::Esp8266, &parts).unwrap()
}

#[test]
fn the_search_finds_every_device_in_rom_bit_order() {
    let roms = [
        rom(0x28, 0x05),
        rom(0x28, 0x03),
        rom(0x10, 0x07),
        rom(0x28, 0x04),
    ];
    let mut b = board_with(roms.iter().map(|r| spec(3, Some(r), 20.0)).collect());
    let mut w = Wire {
        board: &mut b,
        pin: 3,
        t: 0,
    };
    let mut s = Search::default();
    let mut found = Vec::new();
    while let Some(r) = s.next(&mut w, false) {
        found.push(rom_hex(&r));
        assert!(found.len() <= 4, "the search went round again: {found:?}");
    }
    // Least significant bit first, zero branch first: 0x28 = 0b0010_1000 and 0x10 = 0b0001_0000
    // differ at bit 3 (0x28 has 1), so 0x10 comes first; then the 0x28s by serial bits.
    let want = [
        rom(0x10, 0x07),
        rom(0x28, 0x04),
        rom(0x28, 0x05),
        rom(0x28, 0x03),
    ];
    assert_eq!(found, want);
    // The search starts over after the last device.
    assert_eq!(
        s.next(&mut w, false).map(|r| rom_hex(&r)),
        Some(want[0].clone())
    );
    // A targeted search starts at the family.
    s.target(0x28);
    assert_eq!(
        s.next(&mut w, false).map(|r| rom_hex(&r)),
        Some(want[1].clone())
    );
    // Nothing on another pin.
    let mut w = Wire {
        board: &mut b,
        pin: 4,
        t: 0,
    };
    assert!(!w.reset());
    assert_eq!(Search::default().next(&mut w, false), None);
}

fn read_scratchpad(w: &mut Wire, rom: Option<&[u8; 8]>) -> [u8; 9] {
    assert!(w.reset());
    match rom {
        Some(r) => {
            w.write_byte(0x55);
            r.iter().for_each(|b| w.write_byte(*b));
        }
        None => w.write_byte(0xCC),
    }
    w.write_byte(0xBE);
    let mut s = [0u8; 9];
    s.iter_mut().for_each(|b| *b = w.read_byte());
    s
}

#[test]
fn a_ds18b20_converts_in_its_time_and_its_scratchpad_is_byte_exact() {
    let mut b = board_with(vec![spec(2, None, 21.5)]);
    let mut w = Wire {
        board: &mut b,
        pin: 2,
        t: 0,
    };
    // Power-on: +85 °C, TH 75, TL 70, 12 bits.
    assert_eq!(
        read_scratchpad(&mut w, None),
        [0x50, 0x05, 0x4B, 0x46, 0x7F, 0xFF, 0x0C, 0x10, 0x1C]
    );
    assert!(w.reset());
    w.write_byte(0xCC);
    w.write_byte(0x44);
    let start = w.t;
    // Converting: read slots read 0; the scratchpad still has the old value.
    assert!(!w.read_bit());
    w.t = start + 700_000;
    assert_eq!(read_scratchpad(&mut w, None)[..2], [0x50, 0x05]);
    w.t = start + 750_000;
    // 21.5 °C = 0x0158: byte 6 is 0x10 - 8.
    let s = read_scratchpad(&mut w, None);
    assert_eq!(s[..8], [0x58, 0x01, 0x4B, 0x46, 0x7F, 0xFF, 0x08, 0x10]);
    assert_eq!(s[8], crc8(&s[..8]));
}

#[test]
fn resolution_sets_conversion_time_and_precision() {
    let mut b = board_with(vec![spec(2, None, -10.0625)]);
    let rom = {
        let mut w = Wire {
            board: &mut b,
            pin: 2,
            t: 0,
        };
        assert!(w.reset());
        w.write_byte(0x33);
        let mut r = [0u8; 8];
        r.iter_mut().for_each(|x| *x = w.read_byte());
        assert_eq!(r[0], 0x28);
        assert_eq!(r[7], crc8(&r[..7]));
        r
    };
    let mut w = Wire {
        board: &mut b,
        pin: 2,
        t: 0,
    };
    // Write Scratchpad: TH 30, TL -5, 9 bits.
    assert!(w.reset());
    w.write_byte(0xCC);
    w.write_byte(0x4E);
    [30u8, (-5i8) as u8, 0x1F]
        .iter()
        .for_each(|b| w.write_byte(*b));
    assert!(w.reset());
    w.write_byte(0x55);
    rom.iter().for_each(|x| w.write_byte(*x));
    w.write_byte(0x44);
    // The conversion starts with the command's last slot.
    let start = w.t - 70;
    w.t = start + 93_749;
    assert!(!w.read_bit());
    w.t = start + 93_750;
    assert!(w.read_bit());
    // -10.0625 °C is 0xFF5F; 9 bits drop the last three bits: 0xFF58 (-10.5).
    let s = read_scratchpad(&mut w, Some(&rom));
    assert_eq!(s[..5], [0x58, 0xFF, 30, 0xFB, 0x1F]);
    // A wrong ROM selects nobody: all ones.
    let mut other = rom;
    other[1] ^= 1;
    assert_eq!(read_scratchpad(&mut w, Some(&other)), [0xFF; 9]);
    // Read Power Supply: externally powered reads 1.
    assert!(w.reset());
    w.write_byte(0xCC);
    w.write_byte(0xB4);
    assert!(w.read_bit());
}

#[test]
fn bad_roms_and_temperatures_are_refused() {
    let e = Ds18b20::from_spec(&spec(2, Some("28ff641e8216034c"), 20.0), "x").unwrap_err();
    assert!(e.contains("CRC"), "{e}");
    let e = Ds18b20::from_spec(&spec(2, Some("28ff"), 20.0), "x").unwrap_err();
    assert!(e.contains("not 8 bytes"), "{e}");
    let e = Ds18b20::from_spec(&spec(2, None, 130.0), "x").unwrap_err();
    assert!(e.contains("-55..125"), "{e}");
}
