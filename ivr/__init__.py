"""The call-flow engine, TwiML rendering, Twilio webhooks and call sessions."""
