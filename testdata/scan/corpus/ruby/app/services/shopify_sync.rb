class ShopifySync
  SHOP = "acme-store.myshopify.com"
  TOKEN = "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"
  SHARED_SECRET = "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"

  def session
    ShopifyAPI::Auth::Session.new(shop: SHOP, access_token: ENV.fetch("SHOPIFY_TOKEN", TOKEN))
  end
end
