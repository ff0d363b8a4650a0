//! Boot code as public projects write it, run unmodified: the init.lua of the NodeMCU
//! documentation (eventmon handlers that give up after some tries) and the 1.x habit of polling
//! `wifi.sta.getip()` from a timer.

use super::{run_vt, run_with_project};

/// The documentation's init.lua: it prints the failure reason by name and gives up after its
/// tries with `wifi.sta.disconnect()`.
#[test]
fn the_documented_init_lua_gives_up_on_a_missing_network() {
    let script = r#"
local SSID, PASSWORD = "home", "password1"
wifi_connect_event = function(T)
  print("Connection to AP("..T.SSID..") established!")
  print("Waiting for IP address...")
  if disconnect_ct ~= nil then disconnect_ct = nil end
end
wifi_got_ip_event = function(T)
  print("Wifi connection is ready! IP address is: "..T.IP)
end
wifi_disconnect_event = function(T)
  if T.reason == wifi.eventmon.reason.ASSOC_LEAVE then
    return
  end
  local total_tries = 3
  print("\nWiFi connection to AP("..T.SSID..") has failed!")
  for key,val in pairs(wifi.eventmon.reason) do
    if val == T.reason then
      print("Disconnect reason: "..val.."("..key..")")
      break
    end
  end
  if disconnect_ct == nil then
    disconnect_ct = 1
  else
    disconnect_ct = disconnect_ct + 1
  end
  if disconnect_ct < total_tries then
    print("Retrying connection...(attempt "..(disconnect_ct+1).." of "..total_tries..")")
  else
    wifi.sta.disconnect()
    print("Aborting connection to AP!")
    disconnect_ct = nil
  end
end
wifi.eventmon.register(wifi.eventmon.STA_CONNECTED, wifi_connect_event)
wifi.eventmon.register(wifi.eventmon.STA_GOT_IP, wifi_got_ip_event)
wifi.eventmon.register(wifi.eventmon.STA_DISCONNECTED, wifi_disconnect_event)
print("Connecting to WiFi access point...")
wifi.setmode(wifi.STATION)
wifi.sta.config({ssid=SSID, pwd=PASSWORD})
"#;
    let absent = run_with_project(script, "[[wifi.ap]]\nssid = \"elsewhere\"\n", &[]);
    assert_eq!(
        absent.stdout,
        "Connecting to WiFi access point...\n\
         \nWiFi connection to AP(home) has failed!\n\
         Disconnect reason: 201(NO_AP_FOUND)\n\
         Retrying connection...(attempt 2 of 3)\n\
         \nWiFi connection to AP(home) has failed!\n\
         Disconnect reason: 201(NO_AP_FOUND)\n\
         Retrying connection...(attempt 3 of 3)\n\
         \nWiFi connection to AP(home) has failed!\n\
         Disconnect reason: 201(NO_AP_FOUND)\n\
         Aborting connection to AP!\n",
        "{absent:?}"
    );
    let present = run_vt(script, &[]);
    assert_eq!(
        present.stdout,
        "Connecting to WiFi access point...\n\
         Connection to AP(home) established!\n\
         Waiting for IP address...\n\
         Wifi connection is ready! IP address is: 127.0.0.1\n",
        "{present:?}"
    );
}

/// The 1.x habit: a static timer polls `wifi.sta.getip()` until the station has its address.
#[test]
fn a_1_5_script_polls_for_its_address() {
    let r = run_vt(
        "wifi.setmode(wifi.STATION)\n\
         wifi.sta.config('home', 'password1')\n\
         tmr.alarm(1, 1000, tmr.ALARM_AUTO, function()\n\
           if wifi.sta.getip() == nil then\n\
             print('IP unavailable, Waiting...')\n\
           else\n\
             tmr.stop(1)\n\
             print('Config done, IP is '..wifi.sta.getip(), math.floor(tmr.now() / 1000))\n\
           end\n\
         end)\n",
        &["--firmware", "1.5"],
    );
    // At 2000 ms the poll armed first runs first, before the lease of the same instant.
    assert_eq!(
        r.stdout,
        "IP unavailable, Waiting...\nIP unavailable, Waiting...\nConfig done, IP is 127.0.0.1\t3000\n",
        "{r:?}"
    );
}
