//! What an SMSC's `command_status` means for a submission: sent, try later, or refused for
//! good. Named as SMPP 3.4 §5.1.3 names them, because those names are the failure reason the
//! customer sees.

/// What to do after a `submit_sm_resp` with this status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// The SMSC is saturated: wait, then send again here or through another connection.
    Throttled,
    /// Not taken, for a reason that may pass (system error, bind trouble).
    Temporary,
    /// Refused for good: the message fails with the status name as its reason.
    Permanent,
}

pub fn verdict(status: u32) -> Verdict {
    match status {
        0x0000_0000 => Verdict::Accepted,
        0x0000_0058 | 0x0000_0014 => Verdict::Throttled,
        // RSYSERR, RINVBNDSTS, RALYBND, RSUBMITFAIL, RX_T_APPN, RX_R_APPN
        0x0000_0008 | 0x0000_0004 | 0x0000_0005 | 0x0000_0045 | 0x0000_0064 | 0x0000_0066 => {
            Verdict::Temporary
        }
        _ => Verdict::Permanent,
    }
}

/// The SMPP name of a command status, or its hex value when it has none in SMPP 3.4.
pub fn name(status: u32) -> String {
    let known = match status {
        0x00 => "ESME_ROK",
        0x01 => "ESME_RINVMSGLEN",
        0x02 => "ESME_RINVCMDLEN",
        0x03 => "ESME_RINVCMDID",
        0x04 => "ESME_RINVBNDSTS",
        0x05 => "ESME_RALYBND",
        0x06 => "ESME_RINVPRTFLG",
        0x07 => "ESME_RINVREGDLVFLG",
        0x08 => "ESME_RSYSERR",
        0x0A => "ESME_RINVSRCADR",
        0x0B => "ESME_RINVDSTADR",
        0x0C => "ESME_RINVMSGID",
        0x0D => "ESME_RBINDFAIL",
        0x0E => "ESME_RINVPASWD",
        0x0F => "ESME_RINVSYSID",
        0x11 => "ESME_RCANCELFAIL",
        0x13 => "ESME_RREPLACEFAIL",
        0x14 => "ESME_RMSGQFUL",
        0x15 => "ESME_RINVSERTYP",
        0x33 => "ESME_RINVNUMDESTS",
        0x34 => "ESME_RINVDLNAME",
        0x40 => "ESME_RINVDESTFLAG",
        0x42 => "ESME_RINVSUBREP",
        0x43 => "ESME_RINVESMCLASS",
        0x44 => "ESME_RCNTSUBDL",
        0x45 => "ESME_RSUBMITFAIL",
        0x48 => "ESME_RINVSRCTON",
        0x49 => "ESME_RINVSRCNPI",
        0x50 => "ESME_RINVDSTTON",
        0x51 => "ESME_RINVDSTNPI",
        0x53 => "ESME_RINVSYSTYP",
        0x54 => "ESME_RINVREPFLAG",
        0x55 => "ESME_RINVNUMMSGS",
        0x58 => "ESME_RTHROTTLED",
        0x61 => "ESME_RINVSCHED",
        0x62 => "ESME_RINVEXPIRY",
        0x63 => "ESME_RINVDFTMSGID",
        0x64 => "ESME_RX_T_APPN",
        0x65 => "ESME_RX_P_APPN",
        0x66 => "ESME_RX_R_APPN",
        0x67 => "ESME_RQUERYFAIL",
        0xC0 => "ESME_RINVOPTPARSTREAM",
        0xC1 => "ESME_ROPTPARNOTALLWD",
        0xC2 => "ESME_RINVPARLEN",
        0xC3 => "ESME_RMISSINGOPTPARAM",
        0xC4 => "ESME_RINVOPTPARAMVAL",
        0xFE => "ESME_RDELIVERYFAILURE",
        0xFF => "ESME_RUNKNOWNERR",
        _ => return format!("0x{status:08X}"),
    };
    known.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturation_waits_and_bad_destinations_fail() {
        assert_eq!(verdict(0), Verdict::Accepted);
        assert_eq!(verdict(0x58), Verdict::Throttled);
        assert_eq!(verdict(0x14), Verdict::Throttled);
        assert_eq!(verdict(0x08), Verdict::Temporary);
        assert_eq!(verdict(0x0B), Verdict::Permanent);
        assert_eq!(name(0x0B), "ESME_RINVDSTADR");
        assert_eq!(name(0x0400), "0x00000400");
    }
}
