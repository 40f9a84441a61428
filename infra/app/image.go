package app

import (
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// PullSecretName is the registry credential Secret the pods pull with,
// when the stack sets imagePullSecret.
const PullSecretName = "comments-registry"

// imagePullSecrets declares the registry credential Secret when there is
// one, and returns the pod's reference to it.
func imagePullSecrets(ctx *pulumi.Context, name string, args Args, opts ...pulumi.ResourceOption) (corev1.LocalObjectReferenceArray, error) {
	if args.PullSecret == nil {
		return nil, nil
	}
	s, err := corev1.NewSecret(ctx, name+"-registry", &corev1.SecretArgs{
		Metadata: API.Meta(PullSecretName, Namespace),
		Type:     pulumi.String("kubernetes.io/dockerconfigjson"),
		StringData: pulumi.StringMap{
			".dockerconfigjson": pulumi.ToSecret(*args.PullSecret).(pulumi.StringOutput),
		},
	}, opts...)
	if err != nil {
		return nil, err
	}
	return corev1.LocalObjectReferenceArray{corev1.LocalObjectReferenceArgs{Name: s.Metadata.Name()}}, nil
}
