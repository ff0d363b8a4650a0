//! Resistors to a rail (pull-ups and pull-downs as parts), `[[board.press]]`, and the dev kits
//! as ready boards.

use crate::*;

fn board(chip: Chip, file: &str) -> Result<Board, String> {
    #[derive(serde::Deserialize)]
    struct File {
        board: BoardSpec,
    }
    let f: File = toml::from_str(file).map_err(|e| e.to_string())?;
    Board::from_spec(chip, &f.board)
}

fn conflicts(b: &mut Board) -> usize {
    b.take_events()
        .filter(|e| matches!(e, Event::Conflict { .. }))
        .count()
}

const PULL_UP_AND_BUTTON: &str = "[[board.part]]\nkind = \"resistor\"\npins = [3, \"vcc\"]\n\
     ohms = 10000\n[[board.part]]\nkind = \"button\"\npin = 3\n\
     presses = [ { at = 5000, for = 200 } ]\n";

#[test]
fn a_pull_up_part_holds_a_floating_input_high_and_a_pressed_button_beats_it() {
    let mut b = board(Chip::Esp8266, PULL_UP_AND_BUTTON).unwrap();
    b.set_mode(3, Mode::Interrupt, Pull::None, 0);
    assert_eq!(b.read(3, 0), 1);
    b.take_events().for_each(drop);
    b.advance(5_000_000);
    assert_eq!(b.read(3, 5_000_000), 0);
    b.advance(5_200_000);
    assert_eq!(b.read(3, 5_200_000), 1);
    let levels: Vec<_> = b
        .take_events()
        .filter_map(|e| match e {
            Event::Level { t, pin, level, .. } => Some((t, pin, level)),
            Event::Conflict { .. } => panic!("a pull is no conflict: {e:?}"),
            _ => None,
        })
        .collect();
    assert_eq!(levels, vec![(5_000_000, 3, 0), (5_200_000, 3, 1)]);
}

#[test]
fn a_driven_output_beats_a_pull_either_way_without_a_conflict() {
    let mut b = board(
        Chip::Esp8266,
        "[[board.part]]\nkind = \"resistor\"\npins = [\"3v3\", 1]\n\
         [[board.part]]\nkind = \"resistor\"\npins = [2, \"gnd\"]\n",
    )
    .unwrap();
    assert_eq!((b.read(1, 0), b.read(2, 0)), (1, 0));
    b.set_mode(1, Mode::Output, Pull::None, 10);
    b.write(1, false, 10);
    b.set_mode(2, Mode::Output, Pull::None, 10);
    b.write(2, true, 10);
    assert_eq!((b.read(1, 10), b.read(2, 10)), (0, 1));
    // Back to inputs: the pulls hold the pins again.
    b.set_mode(1, Mode::Input, Pull::None, 20);
    b.set_mode(2, Mode::Input, Pull::Up, 20);
    assert_eq!((b.read(1, 20), b.read(2, 20)), (1, 0));
    assert_eq!(conflicts(&mut b), 0);
}

#[test]
fn among_weak_pulls_the_smaller_resistance_wins_and_any_beats_the_chip_pull() {
    // A 10k pull-down against the chip's pull-up; then a 1k resistor from a driven pin wins.
    let mut b = board(
        Chip::Esp8266,
        "[[board.part]]\nkind = \"resistor\"\npins = [8, \"ground\"]\nohms = 10000\n\
         [[board.part]]\nkind = \"resistor\"\npins = [7, 8]\nohms = 1000\n",
    )
    .unwrap();
    b.set_mode(8, Mode::Input, Pull::Up, 0);
    assert_eq!(b.read(8, 0), 0);
    b.set_mode(7, Mode::Output, Pull::None, 5);
    b.write(7, true, 5);
    assert_eq!(b.read(8, 5), 1);
    assert_eq!(conflicts(&mut b), 0);
}

#[test]
fn bad_ends_are_errors_naming_the_key() {
    let e = board(
        Chip::Esp8266,
        "[[board.part]]\nkind = \"resistor\"\npins = [3, \"vdd2\"]\n",
    )
    .unwrap_err();
    assert!(e.contains("line 1"), "{e}");
    assert!(
        e.contains("`pins`: unknown end `vdd2`, expected a pin number, \"vcc\""),
        "{e}"
    );
    let e = board(
        Chip::Esp8266,
        "[[board.part]]\nkind = \"resistor\"\npins = [\"vcc\", \"gnd\"]\n",
    )
    .unwrap_err();
    assert_eq!(
        e,
        "board part 1 (resistor): a resistor between two rails touches no pin"
    );
    let e = board(
        Chip::Esp8266,
        "[[board.part]]\nkind = \"resistor\"\npins = [13, \"vcc\"]\n",
    )
    .unwrap_err();
    assert_eq!(
        e,
        "board part 1 (resistor): pin 13 does not exist on the esp8266 (pins 0..12)"
    );
}

#[test]
fn the_nodemcu_devkit_has_its_pulls_flash_button_and_leds() {
    let mut b =
        Board::from_spec(Chip::Esp8266, &BoardSpec::Named("nodemcu-devkit".into())).unwrap();
    // Inputs without the chip's pulls: D3, D4 and D0 read 1, D8 0, the rest float low.
    let read = |b: &Board| [0, 3, 4, 8, 1].map(|p| b.read(p, 0));
    assert_eq!(read(&b), [1, 1, 1, 0, 0]);
    let flash = b.part_named("flash").unwrap();
    b.set_part(flash, Change::Close(true), 0);
    assert_eq!(b.read(3, 0), 0);
    b.set_part(flash, Change::Close(false), 0);
    assert_eq!(b.read(3, 0), 1);
    // The LEDs hang from 3.3 V: driven low they light.
    let led = |b: &Board, n: &str| b.parts()[b.part_named(n).unwrap()].state().0;
    assert_eq!((led(&b, "led-d4"), led(&b, "led-d0")), ("off", "off"));
    b.set_mode(4, Mode::Output, Pull::None, 1);
    b.write(4, false, 1);
    b.set_mode(0, Mode::Output, Pull::None, 1);
    b.write(0, false, 1);
    assert_eq!((led(&b, "led-d4"), led(&b, "led-d0")), ("on", "on"));
    assert_eq!(conflicts(&mut b), 0);
}

#[test]
fn a_ready_board_takes_extra_parts_and_scheduled_presses_by_name() {
    let mut b = board(
        Chip::Esp8266,
        "[board]\nready = \"nodemcu-devkit\"\n[[board.press]]\npart = \"flash\"\nat = 2000\n\
         for = 100\n[[board.part]]\nkind = \"led\"\npin = 1\nname = \"mine\"\n",
    )
    .unwrap();
    assert!(b.part_named("mine").is_some());
    assert_eq!(b.next_event(), Some(2_000_000));
    b.advance(2_000_000);
    assert_eq!(b.read(3, 2_000_000), 0);
    assert_eq!(b.next_event(), Some(2_100_000));
    b.advance(2_100_000);
    assert_eq!(b.read(3, 2_100_000), 1);
    let e = board(
        Chip::Esp8266,
        "[board]\nready = \"nodemcu-devkit\"\n[[board.press]]\npart = \"led-d4\"\nat = 1\nfor = 1\n",
    )
    .unwrap_err();
    assert_eq!(e, "board press 1: no button named \"led-d4\"");
}

#[test]
fn the_esp32_devkitc_has_its_boot_button_and_each_kit_only_its_chip() {
    let mut b = Board::from_spec(Chip::Esp32, &BoardSpec::Named("esp32-devkitc".into())).unwrap();
    assert_eq!(b.read(0, 0), 1);
    let boot = b.part_named("boot").unwrap();
    b.set_part(boot, Change::Close(true), 0);
    assert_eq!(b.read(0, 0), 0);
    assert_eq!(
        Board::from_spec(Chip::Esp32, &BoardSpec::Named("nodemcu-devkit".into())).unwrap_err(),
        "the ready board \"nodemcu-devkit\" is an ESP8266 board, not an ESP32 one"
    );
    assert_eq!(
        Board::from_spec(Chip::Esp8266, &BoardSpec::Named("esp32-devkitc".into())).unwrap_err(),
        "the ready board \"esp32-devkitc\" is an ESP32 board, not an ESP8266 one"
    );
}

#[test]
fn a_button_or_switch_takes_the_rail_spellings_a_resistor_does() {
    let mut b = board(
        Chip::Esp8266,
        "[[board.part]]\nkind = \"resistor\"\npins = [5, \"gnd\"]\n\
         [[board.part]]\nkind = \"button\"\npin = 5\nto = \"3v3\"\nname = \"up\"\n\
         [[board.part]]\nkind = \"switch\"\npin = 6\nto = \"gnd\"\non = true\n",
    )
    .unwrap();
    assert_eq!(b.read(5, 0), 0);
    let up = b.part_named("up").unwrap();
    b.set_part(up, Change::Close(true), 0);
    assert_eq!(b.read(5, 0), 1);
    b.set_mode(6, Mode::Input, Pull::Up, 0);
    assert_eq!(b.read(6, 0), 0);
    assert_eq!(conflicts(&mut b), 0);
}
