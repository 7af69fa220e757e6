//! `POST /v1/agent/sms/preview`: how a text would travel and what it would cost, from the
//! send's own validation, segmentation and price, so the preview is the charge.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use ami_core::sms;

use crate::auth::AgentCaller;
use crate::{Result, Services};

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewSms {
    /// The destination, as a send would name it: it decides the price.
    #[schema(value_type = String, required = true, pattern = "\\S")]
    pub to: Option<String>,
    #[schema(value_type = String, required = true, pattern = "\\S")]
    pub body: Option<String>,
}

/// The same text with GSM-7 look-alikes for its typographic characters.
#[derive(Debug, Serialize, ToSchema)]
pub struct Gsm7Alternative {
    pub body: String,
    pub segments: u32,
    #[schema(value_type = f64)]
    pub cost_eur: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SmsPreview {
    /// `GSM-7` or `UCS-2`.
    pub encoding: String,
    /// Septets (GSM-7) or UTF-16 code units (UCS-2).
    pub units: usize,
    /// Parts the message is sent and charged as: GSM-7 160 in one, 153 per part beyond;
    /// UCS-2 70 in one, 67 per part beyond.
    pub segments: u32,
    /// The characters GSM-7 cannot carry, which make the whole text UCS-2.
    pub ucs2_characters: Vec<String>,
    /// Present when replacing curly quotes, dashes, the ellipsis and unusual spaces makes
    /// the text GSM-7.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gsm7_alternative: Option<Gsm7Alternative>,
    #[schema(value_type = f64)]
    pub price_per_segment_eur: Value,
    /// What a send of this text to this destination is charged: segments × price.
    #[schema(value_type = f64)]
    pub cost_eur: Value,
}

impl Services {
    /// Reads nothing and writes nothing: the text, the destination and the catalogue decide.
    pub fn preview_sms(&self, agent: &AgentCaller, input: PreviewSms) -> Result<SmsPreview> {
        let job = self.prepare_sms(agent, input.to.as_deref(), input.body)?;
        let price = self.sms_price(&job.to);
        let money = ami_core::money::to_json;
        let gsm7_alternative = sms::gsm7_alternative(&job.body).map(|body| {
            let segments = sms::segment(&body).segments;
            Gsm7Alternative {
                body,
                segments,
                cost_eur: money(i64::from(segments) * price),
            }
        });
        Ok(SmsPreview {
            encoding: job.seg.encoding.as_str().to_owned(),
            units: job.seg.units,
            segments: job.seg.segments,
            ucs2_characters: sms::ucs2_characters(&job.body)
                .into_iter()
                .map(String::from)
                .collect(),
            gsm7_alternative,
            price_per_segment_eur: money(price),
            cost_eur: money(job.cost),
        })
    }
}
