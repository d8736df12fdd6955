"""The provider's campaigns and flows, cached (issue 16 §2; the seed's CampaignManager and
MarketingCampaignCache): recorded from the dispatcher's catalogue refreshes
(recording.py, by service/workers/catalogue_recorder.py) and read by the RPCs
ListProviderCampaigns, GetProviderCampaign and ListProviderFlows (rules.py, handlers.py)."""
