//! `#[derive(Trace)]` for TurboWish's heap walker. Use it through
//! `turbowish_trace::Trace` (the `derive` feature, on by default), which
//! re-exports it next to the trait of the same name.
//!
//! The generated impl traces every field with `Tracer::field`, naming it so
//! the walker can print paths (`state › cache › entries`); enums trace the
//! fields of the variant they hold. Type parameters get a `Trace` bound.
//! `#[trace(skip = "reason")]` leaves a field out; the reason is required,
//! because memory a skipped field owns shows up as unattributed and the next
//! reader deserves to know why.
//!
//! Generated code names the trait by its absolute path,
//! `::turbowish_trace::Trace`. A crate that reaches it through another path
//! (the `turbowish` facade: `turbowish::trace`) says so on the type:
//! `#[trace(crate = "turbowish::trace")]`, as serde's `crate` attribute does.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Error, Fields, LitStr};

/// Derives `turbowish_trace::Trace`: see the crate docs.
#[proc_macro_derive(Trace, attributes(trace))]
pub fn derive_trace(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as DeriveInput);
    expand(input)
        .unwrap_or_else(Error::into_compile_error)
        .into()
}

fn expand(mut input: DeriveInput) -> Result<TokenStream2, Error> {
    let krate = crate_path(&input.attrs)?;
    let body = match &input.data {
        Data::Struct(data) => {
            let (pattern, calls) = trace_fields(&data.fields, None)?;
            quote! {
                let Self #pattern = self;
                #(#calls)*
            }
        }
        Data::Enum(data) => {
            let mut arms = Vec::with_capacity(data.variants.len());
            for variant in &data.variants {
                reject_attributes(&variant.attrs, "a variant")?;
                let ident = &variant.ident;
                let (pattern, calls) = trace_fields(&variant.fields, Some(ident.to_string()))?;
                arms.push(quote! { Self::#ident #pattern => { #(#calls)* } });
            }
            if arms.is_empty() {
                // An empty enum has no values to trace.
                quote! { match *self {} }
            } else {
                quote! { match self { #(#arms)* } }
            }
        }
        Data::Union(data) => {
            return Err(Error::new(
                data.union_token.span(),
                "#[derive(Trace)] does not support unions: which field is live is not \
                 known, so implement `Trace` by hand",
            ))
        }
    };

    let type_params: Vec<syn::Ident> = input
        .generics
        .type_params()
        .map(|p| p.ident.clone())
        .collect();
    let where_clause = input.generics.make_where_clause();
    for param in type_params {
        where_clause
            .predicates
            .push(syn::parse_quote!(#param: #krate::Trace));
    }
    let name = &input.ident;
    let (impl_generics, type_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics #krate::Trace for #name #type_generics #where_clause {
            #[allow(unused_variables)]
            fn trace(&self, tracer: &mut #krate::Tracer<'_>) {
                #body
            }
        }
    })
}

/// The destructuring pattern for `fields` (binding `__f0`, `__f1`, ...) and
/// one `tracer.field(..)` call per traced field. `variant` prefixes the
/// field names in paths (`Loaded.body`).
fn trace_fields(
    fields: &Fields,
    variant: Option<String>,
) -> Result<(TokenStream2, Vec<TokenStream2>), Error> {
    let mut bindings = Vec::new();
    let mut calls = Vec::new();
    for (i, field) in fields.iter().enumerate() {
        let binding = format_ident!("__f{}", i);
        let label = match &field.ident {
            Some(ident) => ident.to_string(),
            None => i.to_string(),
        };
        let path = match &variant {
            Some(v) => format!("{v}.{label}"),
            None => label,
        };
        let skipped = parse_field_attributes(field)?;
        let pattern = match &field.ident {
            Some(ident) if skipped => quote!(#ident: _),
            Some(ident) => quote!(#ident: #binding),
            None if skipped => quote!(_),
            None => quote!(#binding),
        };
        bindings.push(pattern);
        if !skipped {
            let path = LitStr::new(&path, Span::call_site());
            calls.push(quote! { tracer.field(#path, #binding); });
        }
    }
    let pattern = match fields {
        Fields::Named(_) => quote!({ #(#bindings),* }),
        Fields::Unnamed(_) => quote!(( #(#bindings),* )),
        Fields::Unit => quote!(),
    };
    Ok((pattern, calls))
}

/// Reads a field's `#[trace(..)]` attributes: `Ok(true)` when the field is
/// skipped (with a non-empty reason).
fn parse_field_attributes(field: &syn::Field) -> Result<bool, Error> {
    let mut skipped = false;
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("trace")) {
        attr.parse_nested_meta(|meta| {
            if !meta.path.is_ident("skip") {
                return Err(meta.error(
                    "unknown `trace` attribute: the only one is `skip = \"reason\"`",
                ));
            }
            if meta.input.is_empty() || meta.input.peek(syn::Token![,]) {
                return Err(meta.error(
                    "`skip` needs a reason: #[trace(skip = \"why this field's memory need not be traced\")]",
                ));
            }
            let reason: LitStr = meta.value()?.parse()?;
            if reason.value().trim().is_empty() {
                return Err(Error::new(
                    reason.span(),
                    "the reason for `skip` is empty: say why this field's memory need not be traced",
                ));
            }
            skipped = true;
            Ok(())
        })?;
    }
    Ok(skipped)
}

/// The path of the crate with `Trace` in it: `::turbowish_trace`, or what a
/// `#[trace(crate = "path")]` on the type says.
fn crate_path(attrs: &[syn::Attribute]) -> Result<syn::Path, Error> {
    let mut path: syn::Path = syn::parse_quote!(::turbowish_trace);
    for attr in attrs.iter().filter(|a| a.path().is_ident("trace")) {
        attr.parse_nested_meta(|meta| {
            if !meta.path.is_ident("crate") {
                return Err(meta.error(
                    "on a type, `#[trace(..)]` takes only `crate = \"path\"`; \
                     put `#[trace(skip = \"reason\")]` on a field",
                ));
            }
            let lit: LitStr = meta.value()?.parse()?;
            path = lit.parse()?;
            Ok(())
        })?;
    }
    Ok(path)
}

fn reject_attributes(attrs: &[syn::Attribute], what: &str) -> Result<(), Error> {
    match attrs.iter().find(|a| a.path().is_ident("trace")) {
        Some(attr) => Err(Error::new_spanned(
            attr,
            format!("`#[trace(..)]` is not supported on {what}: put `#[trace(skip = \"reason\")]` on a field"),
        )),
        None => Ok(()),
    }
}
