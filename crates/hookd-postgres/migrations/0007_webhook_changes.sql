-- Every process keeps the enabled webhooks it matches records against in memory: any change
-- to what matching and signing read (not the health columns each attempt updates) tells the
-- others to read them again.

CREATE FUNCTION hookd_webhooks_changed() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('hookd_webhooks', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER webhooks_changed
    AFTER INSERT OR DELETE OR UPDATE OF spec, enabled, secret, previous_secrets, disabled_reason
    ON webhooks
    FOR EACH STATEMENT
    EXECUTE FUNCTION hookd_webhooks_changed();
