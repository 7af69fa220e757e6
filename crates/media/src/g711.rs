//! G.711 μ-law and A-law (ITU-T G.711), and transcoding between them.
//!
//! The agent side always speaks 8 kHz μ-law; a caller that negotiated A-law is
//! transcoded through 16-bit linear PCM, sample by sample.

const MULAW_BIAS: i32 = 0x84;
const MULAW_CLIP: i32 = 32_635;

/// 16-bit linear PCM to one μ-law byte.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let mut pcm = i32::from(sample);
    let sign = if pcm < 0 {
        pcm = -pcm;
        0x80
    } else {
        0
    };
    pcm = pcm.min(MULAW_CLIP) + MULAW_BIAS;
    // The segment is the position of the highest set bit, counted from bit 7 (the bias
    // guarantees bit 7 or higher is set).
    let exponent = ((31 - (pcm as u32).leading_zeros()) as i32 - 7).clamp(0, 7);
    let mantissa = (pcm >> (exponent + 3)) & 0x0f;
    !((sign | (exponent << 4) | mantissa) as u8)
}

/// One μ-law byte to 16-bit linear PCM.
pub fn ulaw_to_linear(byte: u8) -> i16 {
    let u = !byte;
    let sign = u & 0x80;
    let exponent = i32::from((u >> 4) & 0x07);
    let mantissa = i32::from(u & 0x0f);
    let magnitude = (((mantissa << 3) + MULAW_BIAS) << exponent) - MULAW_BIAS;
    (if sign != 0 { -magnitude } else { magnitude }) as i16
}

/// 16-bit linear PCM to one A-law byte.
pub fn linear_to_alaw(sample: i16) -> u8 {
    // A-law works on 13-bit magnitudes.
    let pcm = i32::from(sample) >> 3;
    let (sign, magnitude) = if pcm >= 0 {
        (0x80, pcm)
    } else {
        (0x00, -pcm - 1)
    };
    let magnitude = magnitude.min(0x0fff);
    let encoded = if magnitude < 32 {
        magnitude >> 1
    } else {
        // Segment 1..=7: the highest set bit at position 5..=11.
        let segment = (31 - (magnitude as u32).leading_zeros()) as i32 - 4;
        (segment << 4) | ((magnitude >> segment) & 0x0f)
    };
    ((sign | encoded) ^ 0x55) as u8
}

/// One A-law byte to 16-bit linear PCM.
pub fn alaw_to_linear(byte: u8) -> i16 {
    let a = i32::from(byte ^ 0x55);
    let segment = (a >> 4) & 0x07;
    let mantissa = a & 0x0f;
    let magnitude = if segment == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (segment - 1)
    };
    (if a & 0x80 != 0 { magnitude } else { -magnitude }) as i16
}

/// A-law bytes to μ-law bytes.
pub fn alaw_to_ulaw(input: &[u8]) -> Vec<u8> {
    input
        .iter()
        .map(|&b| linear_to_ulaw(alaw_to_linear(b)))
        .collect()
}

/// μ-law bytes to A-law bytes.
pub fn ulaw_to_alaw(input: &[u8]) -> Vec<u8> {
    input
        .iter()
        .map(|&b| linear_to_alaw(ulaw_to_linear(b)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_code_points() {
        // Silence and full scale, from the G.711 tables.
        assert_eq!(linear_to_ulaw(0), 0xff);
        assert_eq!(ulaw_to_linear(0xff), 0);
        assert_eq!(ulaw_to_linear(0x7f), 0);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(ulaw_to_linear(0x80), 32_124);
        assert_eq!(ulaw_to_linear(0x00), -32_124);
        assert_eq!(linear_to_alaw(0), 0xd5);
        assert_eq!(alaw_to_linear(0xd5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(linear_to_alaw(i16::MAX), 0xaa);
        assert_eq!(alaw_to_linear(0xaa), 32_256);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2a);
    }

    #[test]
    fn every_code_decodes_and_reencodes_to_itself() {
        for b in 0..=255u8 {
            // μ-law has two zeros (0x7f and 0xff); both decode to 0, which encodes as 0xff.
            let back = linear_to_ulaw(ulaw_to_linear(b));
            if b == 0x7f {
                assert_eq!(back, 0xff);
            } else {
                assert_eq!(back, b, "ulaw {b:#04x}");
            }
            assert_eq!(linear_to_alaw(alaw_to_linear(b)), b, "alaw {b:#04x}");
        }
    }

    #[test]
    fn decoded_values_are_monotonic() {
        // Positive μ-law codes run from 0xff (smallest) down to 0x80 (largest).
        let ulaw: Vec<i16> = (0x80..=0xffu8).rev().map(ulaw_to_linear).collect();
        assert!(ulaw.windows(2).all(|w| w[0] < w[1]));
        let alaw: Vec<i16> = (0..=0x7fu8)
            .map(|i| alaw_to_linear((0x80 | i) ^ 0x55))
            .collect();
        assert!(alaw.windows(2).all(|w| w[0] < w[1]));
    }

    proptest! {
        #[test]
        fn quantisation_error_is_bounded(s in any::<i16>()) {
            let s32 = i32::from(s);
            let u = i32::from(ulaw_to_linear(linear_to_ulaw(s)));
            let a = i32::from(alaw_to_linear(linear_to_alaw(s)));
            // Logarithmic: the error grows with the magnitude, at most about 1/16 of it
            // (plus the clipping of the largest values).
            let bound = s32.abs() / 15 + 16;
            prop_assert!((u - s32).abs() <= bound.max(if s32.abs() > 32_000 { 700 } else { 0 }), "ulaw {} -> {}", s, u);
            prop_assert!((a - s32).abs() <= bound.max(if s32.abs() > 32_000 { 600 } else { 0 }), "alaw {} -> {}", s, a);
        }

        #[test]
        fn transcoding_keeps_the_signal(b in any::<u8>()) {
            let direct = i32::from(ulaw_to_linear(b));
            let via_alaw = i32::from(alaw_to_linear(ulaw_to_alaw(&[b])[0]));
            prop_assert!((direct - via_alaw).abs() <= direct.abs() / 15 + 16);
        }
    }
}
