/** s3rver knows only its default key pair; dynalite accepts any. They only satisfy the SDK's signer. */
export const LOCAL_REGION = 'us-east-1';
export const LOCAL_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;
