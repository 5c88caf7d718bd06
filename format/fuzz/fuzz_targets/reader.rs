//! Feeds arbitrary bytes to the capture reader: open (index or scan), every dictionary,
//! every events block, and verify must return errors, never panic, hang or allocate without
//! bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(cap) = gcap_format::Capture::from_vec(data.to_vec()) {
        for info in cap.event_blocks() {
            if let Ok(p) = cap.events_block(info) {
                for ev in p.block().iter() {
                    match ev {
                        Ok(raw) => {
                            let _ = raw.to_event();
                        }
                        Err(_) => break,
                    }
                }
            }
        }
        let _ = cap.verify();
        for t in cap.targets() {
            let _ = cap.stack(t.id, 1);
            let _ = cap.symbolize(t.id, 0x401000);
        }
    }
});
