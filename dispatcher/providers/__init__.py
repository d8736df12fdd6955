"""Provider clients behind one interface: Klaviyo, ActiveCampaign (later) and the sandbox."""
