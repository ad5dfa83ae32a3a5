//! `drlaas model list|buy`: the model market (MMC). A listing names a trained model's CID, its
//! environment and price; buying pays its owner (and the owners it was derived from) and lets the
//! buyer use it, e.g. as a warm start.

use drlaas_chain::ListingInfo;

use super::connect::{self, Connection, DEFAULT_REQUESTER};
use super::render::{Table, eth};
use super::{CliError, KeyArgs, NetworkArgs, Output, print_json};

/// `drlaas model`.
#[derive(Debug, clap::Args)]
pub struct ModelArgs {
    #[command(flatten)]
    pub network: NetworkArgs,
    #[command(subcommand)]
    pub command: ModelCommand,
}

/// What people do on the model market.
#[derive(Debug, clap::Subcommand)]
pub enum ModelCommand {
    /// Every listing: environment kind, price, owner, rating, model CID.
    List {
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
    /// Buy a listing at its price.
    Buy {
        /// The listing id.
        id: u64,
        #[command(flatten)]
        keys: KeyArgs,
    },
}

/// Runs `drlaas model ...`.
pub async fn run(args: ModelArgs) -> Result<(), CliError> {
    match args.command {
        ModelCommand::List { output } => list(&args.network, output).await,
        ModelCommand::Buy { id, keys } => buy(&args.network, id, &keys).await,
    }
}

/// A listing's rating: `4.5 (2)`, or `-` before the first.
pub fn rating(l: &ListingInfo) -> String {
    l.mean_rating()
        .map_or_else(|| "-".into(), |r| format!("{r:.1} ({})", l.rating_count))
}

async fn list(network: &NetworkArgs, output: Output) -> Result<(), CliError> {
    let conn = Connection::open(network, |_| Ok(None)).await?;
    let n = conn.market.listing_count().await.map_err(|e| conn.chain_error(e))?;
    let mut listings = Vec::new();
    for id in 1..=n {
        listings.push(conn.market.listing(id).await.map_err(|e| conn.chain_error(e))?);
    }
    if output == Output::Json {
        print_json(&listings);
        return Ok(());
    }
    if listings.is_empty() {
        println!("no models listed");
        return Ok(());
    }
    let mut table = Table::new(&["ID", "KIND", "PRICE", "OWNER", "RATING", "SALES", "STATE", "CID"]);
    for l in &listings {
        table.row(vec![
            l.id.to_string(),
            l.env_kind.map_or_else(|| "?".into(), |k| k.to_string()),
            eth(l.price),
            l.owner.to_string(),
            rating(l),
            l.purchases.to_string(),
            if l.active { "listed" } else { "delisted" }.into(),
            l.model_cid.clone(),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

async fn buy(network: &NetworkArgs, id: u64, keys: &KeyArgs) -> Result<(), CliError> {
    let conn = Connection::open(network, |n| connect::signer(keys, n, Some(DEFAULT_REQUESTER)).map(Some)).await?;
    let buyer = conn.account();
    let listing = conn.market.listing(id).await.map_err(|e| conn.chain_error(e))?;
    if !listing.active {
        return Err(CliError::new(format!("listing {id} was delisted: it cannot be bought")));
    }
    if conn
        .market
        .has_purchased(id, buyer)
        .await
        .map_err(|e| conn.chain_error(e))?
    {
        return Err(CliError::new(format!(
            "{buyer} already bought listing {id}: fetch its model with `drlaas task fetch-model {} --out FILE`",
            listing.model_cid
        )));
    }
    let balance = conn.market.balance(buyer).await.map_err(|e| conn.chain_error(e))?;
    if balance <= listing.price {
        return Err(CliError::new(format!(
            "account {buyer} holds {}, the model costs {} plus gas",
            eth(balance),
            eth(listing.price)
        )));
    }
    let outcome = conn
        .market
        .purchase(buyer, id)
        .await
        .map_err(|e| connect::funds_error(&conn, buyer, balance, listing.price, "the model costs", e))?;
    println!(
        "bought listing {id} for {}: model {}",
        eth(listing.price),
        listing.model_cid
    );
    println!("transaction {} (block {})", outcome.hash, outcome.block);
    Ok(())
}
