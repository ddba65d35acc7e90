/*
 * vmctl/auth.h: Azure access tokens for ARM.
 *
 * Sources, first that works: a service principal from AZURE_TENANT_ID,
 * AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (client credentials grant at
 * <authority>/<tenant>/oauth2/v2.0/token, scope <arm>/.default; authority from
 * AZURE_AUTHORITY_HOST, else the profile, else the public cloud's); the Azure
 * CLI (`az account get-access-token --resource <arm> -o json`); a managed
 * identity through IMDS (http://169.254.169.254, or $WAKEFS_IMDS_ENDPOINT).
 * The token is cached until two minutes before it expires and wiped when
 * freed; it is never logged.
 *
 * Ownership: the caller owns struct auth; auth_token() returns a pointer
 * borrowed until the next auth_token/auth_invalidate/auth_free.
 */
#ifndef WAKEFS_AUTH_H
#define WAKEFS_AUTH_H

struct vm_error;
struct auth;

/* @arm: the ARM endpoint (resource), @authority: NULL = env or default. */
int auth_new(struct auth **out, const char *arm, const char *authority, const char *ca_bundle);
void auth_free(struct auth *a);

/* A valid token (cached or fresh). 0 or VM_EAUTH/VM_EHTTP/VM_EPARSE with @err. */
int auth_token(struct auth *a, const char **token, struct vm_error *err);

/* Forget the cached token (after a 401). */
void auth_invalidate(struct auth *a);

/* Which source gave the current token: "service principal", "azure cli", "managed identity". */
const char *auth_source(const struct auth *a);

#endif
