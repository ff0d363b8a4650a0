//! The board's behaviour as a whole: nets, pulls, conflicts, parts and schedules.

use std::borrow::Cow;

use crate::*;

fn board(toml_parts: &str) -> Board {
    #[derive(serde::Deserialize)]
    struct File {
        board: BoardSpec,
    }
    let f: File = toml::from_str(toml_parts).unwrap();
    Board::from_spec(Chip::Esp8266, &f.board).unwrap()
}

fn levels(b: &mut Board) -> Vec<(Micros, u8, u8, String)> {
    b.take_events()
        .filter_map(|e| match e {
            Event::Level { t, pin, level, by } => Some((t, pin, level, by.into_owned())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_floating_input_reads_low_and_a_pull_up_reads_high() {
    let mut b = Board::new(Chip::Esp8266, &[]).unwrap();
    b.set_mode(1, Mode::Input, Pull::None, 0);
    assert_eq!(b.read(1, 0), 0);
    b.set_mode(1, Mode::Input, Pull::Up, 10);
    assert_eq!(b.read(1, 10), 1);
    // D0 (GPIO16) has no pull-up: it still floats low.
    b.set_mode(0, Mode::Input, Pull::Up, 10);
    assert_eq!(b.read(0, 10), 0);
    let ev: Vec<_> = b.take_events().collect();
    assert!(ev.contains(&Event::Level {
        t: 10,
        pin: 1,
        level: 1,
        by: Cow::Borrowed("gpio")
    }));
}

#[test]
fn a_button_to_ground_on_a_pulled_up_input_reads_1_until_pressed() {
    let mut b = board(
        "[[board.part]]\nkind = \"button\"\npin = 3\npresses = [ { at = 5000, for = 200 } ]\n",
    );
    b.set_mode(3, Mode::Interrupt, Pull::Up, 0);
    assert_eq!(b.read(3, 0), 1);
    assert_eq!(b.next_event(), Some(5_000_000));
    b.take_events().for_each(drop);
    b.advance(5_000_000);
    assert_eq!(b.read(3, 5_000_000), 0);
    let ev: Vec<_> = b.take_events().collect();
    assert_eq!(
        ev,
        vec![
            Event::Part {
                t: 5_000_000,
                part: "button".into(),
                state: "pressed",
                value: None
            },
            Event::Level {
                t: 5_000_000,
                pin: 3,
                level: 0,
                by: "button".into()
            },
        ]
    );
    b.advance(6_000_000);
    assert_eq!(levels(&mut b), vec![(5_200_000, 3, 1, "button".into())]);
    assert_eq!(b.next_event(), None);
}

#[test]
fn a_wire_joins_pins_and_an_output_beats_a_pull_up() {
    let mut b = board("[[board.part]]\nkind = \"wire\"\npins = [1, 2]\n");
    b.set_mode(2, Mode::Input, Pull::Up, 0);
    assert_eq!(b.read(2, 0), 1);
    b.set_mode(1, Mode::Output, Pull::None, 0);
    b.write(1, false, 5);
    assert_eq!(b.read(2, 5), 0);
    b.write(1, true, 7);
    assert_eq!(b.read(2, 7), 1);
    b.write(1, false, 9);
    let l = levels(&mut b);
    assert_eq!(
        l.iter()
            .filter(|e| e.1 == 2)
            .map(|e| (e.0, e.2))
            .collect::<Vec<_>>(),
        [(0, 1), (0, 0), (7, 1), (9, 0)]
    );
    assert_eq!(
        b.history(2).collect::<Vec<_>>(),
        [(0, 1), (0, 0), (7, 1), (9, 0)]
    );
}

#[test]
fn two_outputs_against_each_other_are_one_conflict_reported_once() {
    let mut b = board("[[board.part]]\nkind = \"wire\"\npins = [1, 2]\n");
    b.set_mode(1, Mode::Output, Pull::None, 0);
    b.set_mode(2, Mode::Output, Pull::None, 0);
    b.write(1, true, 10);
    b.write(2, false, 10);
    b.write(2, true, 20);
    b.write(2, false, 30);
    let conflicts: Vec<_> = b
        .take_events()
        .filter(|e| matches!(e, Event::Conflict { .. }))
        .collect();
    assert_eq!(
        conflicts,
        vec![Event::Conflict {
            t: 10,
            conflict: vec![1, 2],
            drivers: vec!["pin 1 high".into(), "pin 2 low".into()],
        }]
    );
    assert_eq!(b.read(1, 30), 0);
}

#[test]
fn open_drain_lets_go_for_high_and_a_resistor_beats_the_pull_up() {
    let mut b = board("[[board.part]]\nkind = \"resistor\"\npins = [5, 6]\n");
    b.set_mode(5, Mode::OpenDrain, Pull::None, 0);
    b.set_mode(6, Mode::Input, Pull::Up, 0);
    b.write(5, false, 1);
    assert_eq!(b.read(5, 1), 0);
    assert_eq!(
        b.read(6, 1),
        0,
        "the resistor pulls 6 down, beating its pull-up"
    );
    b.write(5, true, 2);
    assert_eq!(b.read(6, 2), 1, "released: the pull-up wins again");
    assert_eq!(b.read(5, 2), 0, "nothing pulls 5 up");
}

#[test]
fn leds_and_relays_follow_their_pins() {
    let mut b = board(
        "[[board.part]]\nkind = \"led\"\npin = 4\nactive = \"low\"\n\
         [[board.part]]\nkind = \"relay\"\npin = 2\nname = \"pump\"\n",
    );
    b.take_events().for_each(drop);
    b.set_mode(4, Mode::Output, Pull::None, 0);
    // An output starts low (the register is 0): an active-low LED lights at once.
    b.write(4, false, 100);
    b.set_mode(2, Mode::Output, Pull::None, 0);
    b.write(2, true, 200);
    let parts: Vec<_> = b
        .take_events()
        .filter_map(|e| match e {
            Event::Part { t, part, state, .. } => Some((t, part, state)),
            _ => None,
        })
        .collect();
    assert_eq!(
        parts,
        [
            (0, "led".to_string(), "on"),
            (200, "pump".to_string(), "on")
        ]
    );
}

#[test]
fn a_pwm_pin_reads_its_wave_and_dims_an_led() {
    let mut b = board("[[board.part]]\nkind = \"led\"\npin = 1\n");
    let w = Pwm {
        clock: 1000,
        duty: 512,
        depth: 1023,
        period: None,
    };
    b.set_pwm(1, Some(w), 0);
    assert_eq!(b.read(1, 100), 1);
    assert_eq!(b.read(1, 900), 0);
    let ev: Vec<_> = b.take_events().collect();
    assert!(ev.contains(&Event::Part {
        t: 0,
        part: "led".into(),
        state: "on",
        value: Some(50)
    }));
    assert!(ev.contains(&Event::Pwm {
        t: 0,
        pin: 1,
        pwm: Some(w)
    }));
}

#[test]
fn potentiometer_values_follow_their_schedule() {
    let mut b = board(
        "[[board.part]]\nkind = \"potentiometer\"\npin = 0\nname = \"knob\"\n\
         values = [ { at = 0, value = 512 }, { at = 2000, value = 1000 } ]\n",
    );
    b.advance(0);
    assert_eq!(b.adc(0), 512);
    b.advance(1_999_999);
    assert_eq!(b.adc(0), 512);
    b.advance(2_000_000);
    assert_eq!(b.adc(0), 1000);
    let i = b.analog_on(0).unwrap();
    b.set_part(i, Change::Value(7), 3_000_000);
    assert_eq!(b.adc(0), 7);
}

#[test]
fn a_square_wave_toggles_at_its_frequency() {
    let mut b = board("[[board.part]]\nkind = \"signal\"\npin = 2\nhz = 1000\n");
    b.set_mode(2, Mode::Interrupt, Pull::None, 0);
    b.take_events().for_each(drop);
    b.advance(2000);
    let l: Vec<_> = levels(&mut b).into_iter().map(|e| (e.0, e.2)).collect();
    assert_eq!(l, [(0, 1), (500, 0), (1000, 1), (1500, 0), (2000, 1)]);
    assert_eq!(b.next_event(), Some(2500));
}

#[test]
fn bad_pins_and_unknown_boards_are_errors() {
    let spec = [PartSpec::Led(LedSpec {
        pin: 13,
        name: None,
        active: Active::High,
    })];
    assert_eq!(
        Board::new(Chip::Esp8266, &spec).unwrap_err(),
        "board part 1 (led): pin 13 does not exist on the esp8266 (pins 0..12)"
    );
    assert_eq!(
        Board::from_spec(Chip::Esp8266, &BoardSpec::Named("nope".into())).unwrap_err(),
        "no ready board is named \"nope\""
    );
    let pot = [PartSpec::Potentiometer(PotentiometerSpec {
        pin: 1,
        name: None,
        values: vec![],
    })];
    assert_eq!(
        Board::new(Chip::Esp8266, &pot).unwrap_err(),
        "board part 1 (potentiometer): ADC channel 1 does not exist on the esp8266 (channels 0..0)"
    );
}

#[test]
fn a_quiet_board_keeps_history_and_reports_only_conflicts() {
    let mut b = board("[[board.part]]\nkind = \"wire\"\npins = [1, 2]\n");
    b.set_quiet(true);
    b.set_mode(3, Mode::Output, Pull::None, 0);
    b.write(3, true, 5);
    b.set_mode(1, Mode::Output, Pull::None, 0);
    b.set_mode(2, Mode::Output, Pull::None, 0);
    b.write(1, true, 10);
    let ev: Vec<_> = b.take_events().collect();
    assert_eq!(ev.len(), 1);
    assert!(matches!(ev[0], Event::Conflict { t: 10, .. }));
    assert_eq!(b.history(3).collect::<Vec<_>>(), [(5, 1)]);
}

#[test]
fn a_pull_down_reads_low_and_loses_to_a_switch_to_vcc() {
    #[derive(serde::Deserialize)]
    struct File {
        board: BoardSpec,
    }
    let f: File =
        toml::from_str("[[board.part]]\nkind = \"switch\"\npin = 4\nto = \"vcc\"\n").unwrap();
    let mut b = Board::from_spec(Chip::Esp32, &f.board).unwrap();
    b.set_mode(4, Mode::Input, Pull::Down, 0);
    assert_eq!(b.read(4, 0), 0);
    let i = b.part_on(4, |k| matches!(k, Kind::Contact { .. })).unwrap();
    b.set_part(i, Change::Close(true), 7);
    assert_eq!(b.read(4, 7), 1);
    assert_eq!(b.parts()[i].state(), ("on", None));
    // GPIO34..39 have no pulls on the ESP32.
    b.set_mode(35, Mode::Input, Pull::Up, 8);
    assert_eq!(b.read(35, 8), 0);
}

#[test]
fn a_max7219_takes_the_bus_bits_while_its_cs_pin_is_low_and_latches_on_the_rise() {
    let mut b = board("[[board.part]]\nkind = \"max7219\"\nname = \"m\"\npin = 2\n");
    let pins = SpiPins {
        mosi: 7,
        miso: 6,
        sclk: 5,
        cs: 8,
    };
    // CS high: the bus's bits are not for it.
    b.set_mode(2, Mode::Output, Pull::None, 0);
    b.write(2, true, 0);
    b.spi_transfer(pins, &[0x0c, 0x01], 16, 1);
    b.write(2, false, 2);
    b.spi_transfer(pins, &[0x01, 0x81], 16, 3);
    b.write(2, true, 4);
    let latches: Vec<_> = b
        .take_events()
        .filter(|e| matches!(e, Event::Max7219 { .. }))
        .map(|e| serde_json::to_string(&e).unwrap())
        .collect();
    assert_eq!(
        latches,
        [
            r#"{"t":0,"max7219":"m","latch":[[0,0]]}"#,
            r#"{"t":4,"max7219":"m","latch":[[1,129]]}"#
        ]
    );
    let m = b.max7219("m").unwrap();
    assert_eq!(m.chips[0].digits[0], 0x81);
    assert!(!m.chips[0].on, "the shutdown frame went by with CS high");
}

#[test]
fn a_1_wire_reset_is_a_trace_line_with_its_presence() {
    let mut b = board("[[board.part]]\nkind = \"ds18b20\"\npin = 3\n");
    assert!(b.ow_reset(3, 5));
    assert!(!b.ow_reset(4, 6));
    b.ow_bytes(3, true, &[1, 2], 7);
    b.ow_bytes(3, false, &[], 8);
    let lines: Vec<_> = b
        .take_events()
        .map(|e| serde_json::to_string(&e).unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            r#"{"t":5,"ow":3,"reset":true,"presence":true}"#,
            r#"{"t":6,"ow":4,"reset":true,"presence":false}"#,
            r#"{"t":7,"ow":3,"read":[1,2]}"#,
        ]
    );
}

#[test]
fn a_max7219_spec_checks_its_count_and_keys() {
    #[derive(serde::Deserialize)]
    struct File {
        board: BoardSpec,
    }
    let spec = |s: &str| -> Result<Board, String> {
        let f: File = toml::from_str(s).map_err(|e| e.to_string())?;
        Board::from_spec(Chip::Esp8266, &f.board)
    };
    let e = spec("[[board.part]]\nkind = \"max7219\"\npin = 8\ncount = 0\n").unwrap_err();
    assert_eq!(e, "board part 1 (max7219): count 0 is outside 1..64");
    let e = spec("[[board.part]]\nkind = \"max7219\"\npin = 8\nchips = 2\n").unwrap_err();
    assert!(e.contains("unknown field `chips`"), "{e}");
    let b = spec("[[board.part]]\nkind = \"max7219\"\npin = 8\ncount = 4\n").unwrap();
    assert_eq!(b.max7219("max7219").unwrap().chips.len(), 4);
}
